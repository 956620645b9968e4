//! Full-text search over the messages (`detalle_ticket`'s subject and body),
//! spelled per backend: SQLite's FTS5 table `detalle_ticket_fts` (external
//! content, rowid = `id_detalle_ticket`, kept by triggers) and MariaDB's
//! `FULLTEXT INDEX ft_detalle_texto (asunto, cuerpo)`. Both fold case and
//! accents (FTS5's `unicode61` tokenizer, the column's `utf8mb4_unicode_ci`).
//!
//! What the user typed never reaches either as syntax: it is cut into words
//! of letters and digits ([`search_words`]), and the search, bound as one
//! value, asks for each of them as a plain term, all required.

use diesel::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate};
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text};
use diesel::sqlite::Sqlite;
use helpdesk_domain::model::search_words;

use crate::schema::detalle_ticket;

/// InnoDB's default stopwords of three letters or more
/// (`INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD`): never indexed, so a
/// required one would make every search that names it find nothing (`com`
/// in a search for an address). They are left out of MariaDB's search.
const INNODB_STOPWORDS: &[&str] = &[
    "about", "are", "com", "for", "from", "how", "that", "the", "this", "was", "what", "when", "where", "who", "will",
    "with", "und", "www",
];

/// A condition on `detalle_ticket`: the message's subject or body holds
/// every word of a search.
#[derive(Debug, Clone)]
pub(crate) struct HasWords {
    /// FTS5: each word a quoted string (`"camion" "rojo"`: both).
    fts5: String,
    /// MariaDB, boolean mode: each word required (`+camion +rojo`).
    boolean: String,
}

impl HasWords {
    /// The condition for a search of `text`; `None` when it has no word to
    /// look for (and then matches nothing).
    pub(crate) fn new(text: &str) -> Option<Self> {
        let words = search_words(text);
        if words.is_empty() {
            return None;
        }
        // The words hold only letters and digits; the quoting and the
        // filter below say so again where the syntax is written.
        let fts5 = words.iter().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ");
        let boolean = words
            .iter()
            .filter(|w| !INNODB_STOPWORDS.contains(&w.as_str()))
            .map(|w| format!("+{}", w.chars().filter(|c| c.is_alphanumeric()).collect::<String>()))
            .collect::<Vec<_>>()
            .join(" ");
        Some(HasWords { fts5, boolean })
    }
}

impl Expression for HasWords {
    type SqlType = Bool;
}

// It reads `detalle_ticket`'s columns: it appears where they do (in a
// subquery of the ticket list, too).
impl<QS> AppearsOnTable<QS> for HasWords where detalle_ticket::id_detalle_ticket: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for HasWords where detalle_ticket::id_detalle_ticket: SelectableExpression<QS> {}

impl<GB> ValidGrouping<GB> for HasWords {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for HasWords {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

// The text of each is the same for every search (the search is a bound
// value): the connection keeps the statement prepared.

impl QueryFragment<Sqlite> for HasWords {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "detalle_ticket.id_detalle_ticket IN \
             (SELECT rowid FROM detalle_ticket_fts WHERE detalle_ticket_fts MATCH ",
        );
        out.push_bind_param::<Text, _>(&self.fts5)?;
        out.push_sql(")");
        Ok(())
    }
}

impl QueryFragment<Mysql> for HasWords {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql("MATCH (detalle_ticket.asunto, detalle_ticket.cuerpo) AGAINST (");
        out.push_bind_param::<Text, _>(&self.boolean)?;
        out.push_sql(" IN BOOLEAN MODE)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_reach_the_search() {
        let s = HasWords::new(r#"Camión" -ROJO* (llegó) NEAR/2 OR ^x: {}"#).unwrap();
        assert_eq!(s.fts5, r#""camion" "rojo" "llego" "near""#);
        assert_eq!(s.boolean, "+camion +rojo +llego +near");
        assert!(HasWords::new(r#"" * - ( ) ab +c"#).is_none(), "no word of three letters");
    }

    #[test]
    fn innodb_stopwords_are_not_required() {
        let s = HasWords::new("soporte@empresa.com").unwrap();
        assert_eq!(s.fts5, r#""soporte" "empresa" "com""#);
        assert_eq!(s.boolean, "+soporte +empresa");
        assert_eq!(HasWords::new("the www").unwrap().boolean, "", "matches nothing on MariaDB");
    }
}
