//! What identifies mail and its people, parsed once where it comes in:
//! a Message-ID, an e-mail address.

use std::sync::LazyLock;

use regex::Regex;

use crate::crypto::sha256_hex;

/// A Message-ID, without its angle brackets and lower-cased: the one form
/// in which the helpdesk compares, hashes and dedupes Message-IDs, whether
/// it read them in a mail or wrote them itself. (RFC 5322 leaves the case
/// of the local part significant; mail systems rewrite it often enough
/// that treating two spellings as one message is the safer error.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// `<Abc@Host>`, ` abc@host `: `abc@host`. `None` when nothing is left.
    pub fn parse(raw: &str) -> Option<Self> {
        let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase();
        (!id.is_empty()).then_some(MessageId(id))
    }

    /// Every Message-ID of a header that lists them (`In-Reply-To`,
    /// `References`: separated by blanks), in order.
    pub fn list(header: &str) -> Vec<Self> {
        header.split_whitespace().filter_map(Self::parse).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 (hex) of the normalised id: what `message_id_hash` holds and
    /// threading looks up.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }

    /// The dedupe key of a message that has this id (`clave_dedupe`): a
    /// message stored under it is that message, whichever way it came.
    pub fn dedupe_key(&self) -> String {
        sha256_hex(format!("mid:{}", self.0).as_bytes())
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Laravel's default `email` rule is RFC validation (egulias); this is its
/// practical core: one @, a non-empty local part without spaces, and a
/// domain of dot-separated labels.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^\s@]+@[A-Za-z0-9\p{L}](?:[A-Za-z0-9\p{L}-]*[A-Za-z0-9\p{L}])?(?:\.[A-Za-z0-9\p{L}](?:[A-Za-z0-9\p{L}-]*[A-Za-z0-9\p{L}])?)*$")
        .expect("valid regex")
});

/// The longest address there is (RFC 5321's path limits).
const MAX_ADDRESS: usize = 320;

/// An e-mail address (the addr-spec of a mailbox), lower-cased: what a
/// participant, a recipient or one of the helpdesk's own addresses is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(String);

/// An address list as written in a header: the addresses that parse, and
/// the items that do not, as they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList {
    pub valid: Vec<Address>,
    pub invalid: Vec<String>,
}

impl Address {
    /// A bare address (`ana@x.com`) as Laravel's `email` rule takes it
    /// (blanks around it included: not one).
    pub fn parse_bare(s: &str) -> Option<Self> {
        (s.chars().count() <= MAX_ADDRESS && EMAIL.is_match(s)).then(|| Address(s.to_lowercase()))
    }

    /// A mailbox: `Ana <ana@x.com>` or a bare address. `Juan Perez
    /// juan@x.com`, `a@b@x.com`, `juan@` are not.
    pub fn parse(mailbox: &str) -> Option<Self> {
        let s = mailbox.trim();
        let addr = match (s.rfind('<'), s.ends_with('>')) {
            (Some(i), true) => &s[i + 1..s.len() - 1],
            _ => s,
        };
        Self::parse_bare(addr.trim())
    }

    /// Every mailbox of an address list (RFC 5322: separated by `,`, and by
    /// `;` as some clients write them; separators inside quoted names and
    /// angle brackets do not count), each address once, in order.
    pub fn list(s: &str) -> AddressList {
        let mut out = AddressList::default();
        for item in split_address_list(s) {
            match Self::parse(item) {
                Some(a) if !out.valid.contains(&a) => out.valid.push(a),
                Some(_) => {}
                None => out.invalid.push(item.trim().to_string()),
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is this address, whatever its case.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The items of an address list: split at `,` and `;` outside quotes and
/// angle brackets; blank items dropped.
pub fn split_address_list(s: &str) -> Vec<&str> {
    let (mut items, mut start, mut quoted, mut angled) = (Vec::new(), 0, false, false);
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            ',' | ';' if !quoted && !angled => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items.into_iter().filter(|m| !m.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_compared_in_one_form() {
        let a = MessageId::parse(" <Ticket7.rAbC.0f@Mesa.Test> ").unwrap();
        let b = MessageId::parse("ticket7.rabc.0f@mesa.test").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "ticket7.rabc.0f@mesa.test");
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.dedupe_key(), b.dedupe_key());
        assert_ne!(a.hash(), a.dedupe_key());
        assert_eq!(MessageId::parse(" <> "), None);
        let refs = MessageId::list("<A@x>  <b@X>\n\t<c@x>");
        assert_eq!(refs.iter().map(MessageId::as_str).collect::<Vec<_>>(), ["a@x", "b@x", "c@x"]);
    }

    #[test]
    fn addresses_parse_as_mailboxes() {
        assert_eq!(Address::parse("Ana <Ana@Ejemplo.test>").unwrap().as_str(), "ana@ejemplo.test");
        assert_eq!(Address::parse(" ana@ejemplo.test ").unwrap().as_str(), "ana@ejemplo.test");
        assert_eq!(Address::parse_bare(" ana@ejemplo.test"), None, "Laravel's email rule");
        for bad in ["Juan Perez juan@example.com", "a@b@example.com", "juan@", "@x.com", "", "<>", "juan@-x.com"] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
        let long = format!("{}@x.com", "a".repeat(320));
        assert_eq!(Address::parse(&long), None);
    }

    #[test]
    fn a_list_keeps_what_parses_and_names_what_does_not() {
        let list = Address::list(
            "\"Perez, Juan\" <juan@x.com>; Ana <ana@x.com>, juan@X.com, Juan Perez juan@example.com,, a@b@c.com",
        );
        assert_eq!(list.valid.iter().map(Address::as_str).collect::<Vec<_>>(), ["juan@x.com", "ana@x.com"]);
        assert_eq!(list.invalid, ["Juan Perez juan@example.com", "a@b@c.com"]);
    }
}
