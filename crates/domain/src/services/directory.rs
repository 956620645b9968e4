//! Internal users: the `UsuarioInterno/get` query.

use std::sync::Arc;

use crate::error::RepoError;
use crate::model::{InternalUser, UserFilter};
use crate::ports::UserRepository;

pub struct DirectoryService<R: UserRepository> {
    repo: Arc<R>,
}

impl<R: UserRepository> DirectoryService<R> {
    pub fn new(repo: Arc<R>) -> Self {
        Self { repo }
    }

    /// Users matching every given criterion. Blank criteria are ignored; a
    /// filter with none left finds nobody (the HTTP layer's
    /// `required_without_all` rule normally refuses it first).
    pub async fn find_users(&self, filter: UserFilter) -> Result<Vec<InternalUser>, RepoError> {
        let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let filter =
            UserFilter { login: clean(filter.login), email: clean(filter.email), department_id: filter.department_id };
        if filter == UserFilter::default() {
            return Ok(Vec::new());
        }
        self.repo.find_users(filter).await
    }
}
