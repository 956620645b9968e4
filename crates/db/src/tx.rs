//! One transaction on one connection: the body every transaction of the
//! crate runs through ([`transaction`]) and what it must be ([`TxBody`]).
//! `transaction.rs` leases connections and serialises SQLite's writers;
//! `retry.rs` runs a deadlock victim again; both build on this.

use std::future::Future;

use diesel_async::AsyncConnection;

use crate::error::TxError;

/// What a transaction's body is besides an `AsyncFn(&mut C) -> Result<T,
/// TxError>`: a plain `Fn` returning a `Send` future. Stable Rust cannot
/// name an async closure's future to require `Send` of it; this says it
/// through the `Fn` signature, as diesel-async's `transaction` does.
pub(crate) trait TxBody<'c, C: 'c, T>: Fn(&'c mut C) -> <Self as TxBody<'c, C, T>>::Fut {
    type Fut: Future<Output = Result<T, TxError>> + Send;
}

impl<'c, C: 'c, T, F, Fut> TxBody<'c, C, T> for F
where
    F: Fn(&'c mut C) -> Fut,
    Fut: Future<Output = Result<T, TxError>> + Send,
{
    type Fut = Fut;
}

/// One transaction: `body` run on `conn`, committed when it returns `Ok`,
/// rolled back otherwise.
///
/// Not an `async fn`: its future is declared `Send` here, where the bounds
/// prove it, instead of leaking to callers, where rustc cannot (the
/// higher-ranked lifetimes of rust-lang/rust#100013).
pub(crate) fn transaction<'c, C, T, F>(conn: &'c mut C, body: F) -> impl Future<Output = Result<T, TxError>> + Send + 'c
where
    C: AsyncConnection + 'static,
    T: Send + 'c,
    F: for<'r> AsyncFn(&'r mut C) -> Result<T, TxError> + for<'r> TxBody<'r, C, T> + Send + 'c,
{
    conn.transaction::<_, TxError, _>(body)
}
