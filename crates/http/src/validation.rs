//! A small rule engine with Laravel's semantics and wording, used by every
//! endpoint: rules are declared per field, checked against the input bag
//! (JSON object, form or query), and failures become HTTP 422 with
//! `{"message": "<first>[ (and N more errors)]", "errors": {field: [..]}}`.
//!
//! Laravel facts honoured here: a value is absent when null, blank or an
//! empty array; only implicit rules (`required*`) look at absent values;
//! `max`/`min` on strings count characters; the attribute's name in a message
//! is the field with `_` written as a space.

use std::sync::LazyLock;

use helpdesk_domain::model::{Address, split_address_list};
use regex::Regex;
use serde_json::{Map, Value};

/// One rule of one field.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Present and not blank.
    Required,
    /// Required when any of these fields is present.
    RequiredWith(&'static [&'static str]),
    /// Required when none of these fields is present.
    RequiredWithoutAll(&'static [&'static str]),
    /// Required when the other field equals the value.
    RequiredIf(&'static str, &'static str),
    /// `<field>_confirmation` must be equal.
    Confirmed,
    /// Laravel's `exclude_unless`: unless the other field equals the value,
    /// the field is ignored altogether (none of its rules run).
    ExcludeUnless(&'static str, &'static str),
    /// A string (numbers are not strings).
    String,
    /// An integer, or a string of one (as PHP's filter_var accepts).
    Integer,
    /// A JSON array.
    Array,
    /// A JSON object (an associative array in PHP).
    Object,
    Email,
    /// An e-mail address, optionally with a display name (`Ana <ana@x.com>`),
    /// as mail headers carry them. Same message as `Email`.
    Mailbox,
    /// An RFC 5322 address list: mailboxes separated by `,` (or `;`), commas
    /// inside quoted display names allowed; at least one. Same message.
    MailboxList,
    /// Strings: at most N characters. Integers: at most N. Arrays: at most N items.
    Max(usize),
    /// Strings: at least N characters. Integers: at least N.
    Min(i64),
    /// Must match; the second field is the pattern as documented.
    Regex(&'static LazyLock<Regex>),
    /// One of these values (exact).
    In(&'static [&'static str]),
    /// `Y-m-d H:i:s`.
    DateTime,
    /// A date, `Y-m-d` or `Y-m-d H:i:s`.
    Date,
    /// Laravel's `boolean`: true, false, 1, 0, "1", "0" (and "true",
    /// "false", which query strings carry).
    Boolean,
}

impl Rule {
    fn is_implicit(&self) -> bool {
        matches!(self, Rule::Required | Rule::RequiredWith(_) | Rule::RequiredWithoutAll(_) | Rule::RequiredIf(..))
    }
}

/// `Name <addr>` or a bare address: the domain's one parser.
fn is_mailbox(s: &str) -> bool {
    Address::parse(s).is_some()
}

/// A field and its rules, in the order Laravel reports them.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub rules: Vec<Rule>,
}

pub fn field(name: &'static str, rules: Vec<Rule>) -> Field {
    Field { name, rules }
}

/// Failures, per field, in rule order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationErrors {
    pub errors: Vec<(String, Vec<String>)>,
}

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn add(&mut self, field: &str, message: String) {
        match self.errors.iter_mut().find(|(f, _)| f == field) {
            Some((_, list)) => list.push(message),
            None => self.errors.push((field.to_string(), vec![message])),
        }
    }

    /// Laravel's summary: the first message, then "(and N more error[s])".
    pub fn message(&self) -> String {
        let mut all = self.errors.iter().flat_map(|(_, m)| m.iter());
        let first = all.next().cloned().unwrap_or_default();
        match all.count() {
            0 => first,
            1 => format!("{first} (and 1 more error)"),
            n => format!("{first} (and {n} more errors)"),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut errors = Map::new();
        for (f, msgs) in &self.errors {
            errors.insert(f.clone(), Value::from(msgs.clone()));
        }
        serde_json::json!({ "message": self.message(), "errors": errors })
    }
}

/// Laravel's idea of "absent": missing, null, blank string, empty array.
pub fn is_absent(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn attribute(name: &str) -> String {
    name.replace('_', " ")
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| attribute(n)).collect::<Vec<_>>().join(" / ")
}

/// Parses an integer as Laravel's `integer` rule accepts it.
pub fn as_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || !t.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        }
        _ => None,
    }
}

/// A date as [`Rule::Date`] accepts it: `Y-m-d` (midnight) or `Y-m-d H:i:s`.
pub fn parse_date(s: &str) -> Option<chrono::NaiveDateTime> {
    let s = s.trim();
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
}

/// A boolean as [`Rule::Boolean`] accepts it.
pub fn as_boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Checks one value at `path` (a field name, or `list.0.name` for items).
fn check(input: &Map<String, Value>, path: &str, value: Option<&Value>, rules: &[Rule], errors: &mut ValidationErrors) {
    let excluded = rules.iter().any(|r| match r {
        Rule::ExcludeUnless(other, wanted) => input.get(*other).and_then(Value::as_str).map(str::trim) != Some(*wanted),
        _ => false,
    });
    if excluded {
        return;
    }
    let absent = is_absent(value);
    let attr = attribute(path);
    let numeric = rules.iter().any(|r| matches!(r, Rule::Integer));
    for rule in rules {
        if absent && !rule.is_implicit() {
            continue;
        }
        let failed: Option<String> = match rule {
            Rule::Required => absent.then(|| format!("The {attr} field is required.")),
            Rule::RequiredWith(others) => (absent && others.iter().any(|o| !is_absent(input.get(*o))))
                .then(|| format!("The {attr} field is required when {} is present.", list(others))),
            Rule::RequiredWithoutAll(others) => (absent && others.iter().all(|o| is_absent(input.get(*o))))
                .then(|| format!("The {attr} field is required when none of {} are present.", list(others))),
            Rule::RequiredIf(other, wanted) => (absent
                && input.get(*other).is_some_and(|v| v.as_str().map(str::trim) == Some(*wanted)))
            .then(|| format!("The {attr} field is required when {} is {wanted}.", attribute(other))),
            Rule::Confirmed => {
                let confirmation = input.get(&format!("{path}_confirmation"));
                (confirmation != value).then(|| format!("The {attr} field confirmation does not match."))
            }
            _ => {
                let v = value.expect("present");
                check_value(rule, v, &attr, numeric)
            }
        };
        if let Some(msg) = failed {
            errors.add(path, msg);
        }
    }
}

/// `numeric`: the field also has the `integer` rule, so `min`/`max` compare
/// values, not lengths (Laravel's size rules).
fn check_value(rule: &Rule, v: &Value, attr: &str, numeric: bool) -> Option<String> {
    match rule {
        Rule::Required
        | Rule::RequiredWith(_)
        | Rule::RequiredWithoutAll(_)
        | Rule::RequiredIf(..)
        | Rule::Confirmed
        | Rule::ExcludeUnless(..) => None,
        Rule::String => (!v.is_string()).then(|| format!("The {attr} field must be a string.")),
        Rule::Integer => as_integer(v).is_none().then(|| format!("The {attr} field must be an integer.")),
        Rule::Array => (!v.is_array()).then(|| format!("The {attr} field must be an array.")),
        Rule::Object => (!v.is_object()).then(|| format!("The {attr} field must be an array.")),
        Rule::Email => {
            let ok = v.as_str().is_some_and(|s| Address::parse_bare(s).is_some());
            (!ok).then(|| format!("The {attr} field must be a valid email address."))
        }
        Rule::Mailbox => {
            let ok = v.as_str().is_some_and(is_mailbox);
            (!ok).then(|| format!("The {attr} field must be a valid email address."))
        }
        Rule::MailboxList => {
            let ok = v.as_str().is_some_and(|s| {
                let items = split_address_list(s);
                !items.is_empty() && items.iter().all(|m| is_mailbox(m))
            });
            (!ok).then(|| format!("The {attr} field must be a valid email address."))
        }
        Rule::Max(max) if numeric => as_integer(v)
            .is_none_or(|n| n > *max as i64)
            .then(|| format!("The {attr} field must not be greater than {max}.")),
        Rule::Max(max) => match v {
            Value::String(s) => (s.chars().count() > *max)
                .then(|| format!("The {attr} field must not be greater than {max} characters.")),
            Value::Array(a) => {
                (a.len() > *max).then(|| format!("The {attr} field must not have more than {max} items."))
            }
            _ => None,
        },
        Rule::Min(min) if numeric => {
            as_integer(v).is_none_or(|n| n < *min).then(|| format!("The {attr} field must be at least {min}."))
        }
        Rule::Min(min) => match v {
            Value::String(s) => ((s.chars().count() as i64) < *min)
                .then(|| format!("The {attr} field must be at least {min} characters.")),
            Value::Array(a) => {
                ((a.len() as i64) < *min).then(|| format!("The {attr} field must have at least {min} items."))
            }
            _ => None,
        },
        Rule::Regex(re) => {
            let ok = v.as_str().is_some_and(|s| re.is_match(s)) || (v.is_number() && re.is_match(&v.to_string()));
            (!ok).then(|| format!("The {attr} field format is invalid."))
        }
        Rule::In(options) => {
            let ok = v.as_str().is_some_and(|s| options.contains(&s));
            (!ok).then(|| format!("The selected {attr} is invalid."))
        }
        Rule::DateTime => {
            let ok = v.as_str().is_some_and(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok());
            (!ok).then(|| format!("The {attr} field must match the format Y-m-d H:i:s."))
        }
        Rule::Date => {
            let ok = v.as_str().and_then(parse_date).is_some();
            (!ok).then(|| format!("The {attr} field must be a valid date."))
        }
        Rule::Boolean => (as_boolean(v).is_none()).then(|| format!("The {attr} field must be true or false.")),
    }
}

/// Validates `input` against `fields`. `items` declares rules for the
/// members of list fields: (`attachments`, [`name` rules, ...]), reported as
/// `attachments.0.name` like Laravel's `attachments.*.name`.
pub fn validate(
    input: &Map<String, Value>,
    fields: &[Field],
    items: &[(&'static str, Vec<Field>)],
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    for f in fields {
        check(input, f.name, input.get(f.name), &f.rules, &mut errors);
    }
    for (list_name, item_fields) in items {
        let Some(Value::Array(list)) = input.get(*list_name) else {
            continue;
        };
        for (i, item) in list.iter().enumerate() {
            let empty = Map::new();
            let obj = item.as_object().unwrap_or(&empty);
            for f in item_fields {
                let path = format!("{list_name}.{i}.{}", f.name);
                // Inside an item, `required_with:list` means: required.
                check(obj, &path, obj.get(f.name), &f.rules, &mut errors);
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]+$").unwrap());

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn required_and_the_summary_message() {
        let fields = [
            field("product", vec![Rule::Required, Rule::String, Rule::Max(100)]),
            field("email", vec![Rule::Required, Rule::Email]),
            field("id_device", vec![Rule::Integer, Rule::Min(1)]),
        ];
        let e = validate(&obj(json!({"email": "  "})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The product field is required. (and 1 more error)");
        assert_eq!(
            e.to_json(),
            json!({"message": "The product field is required. (and 1 more error)", "errors": {
                "product": ["The product field is required."],
                "email": ["The email field is required."]}})
        );
        let e = validate(&obj(json!({"product": 5, "email": "x", "id_device": "0"})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The product field must be a string. (and 2 more errors)");
        assert_eq!(e.errors[2], ("id_device".into(), vec!["The id device field must be at least 1.".into()]));
        assert!(validate(&obj(json!({"product": "p", "email": "a@b.co", "id_device": "82"})), &fields, &[]).is_ok());
    }

    #[test]
    fn max_counts_characters_not_bytes() {
        let fields = [field("name", vec![Rule::String, Rule::Max(3)])];
        assert!(validate(&obj(json!({"name": "ñáé"})), &fields, &[]).is_ok());
        let e = validate(&obj(json!({"name": "ñáéí"})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The name field must not be greater than 3 characters.");
    }

    #[test]
    fn absent_optional_values_skip_non_implicit_rules() {
        let fields = [field("cc", vec![Rule::String, Rule::Email, Rule::Max(3)])];
        for v in [json!({}), json!({"cc": null}), json!({"cc": ""}), json!({"cc": "   "})] {
            assert!(validate(&obj(v.clone()), &fields, &[]).is_ok(), "{v}");
        }
    }

    #[test]
    fn required_without_all_and_required_with() {
        let fields = [
            field("user", vec![Rule::RequiredWithoutAll(&["email", "departamento"]), Rule::String]),
            field("email", vec![Rule::RequiredWithoutAll(&["user", "departamento"]), Rule::Email]),
            field("departamento", vec![Rule::RequiredWithoutAll(&["user", "email"]), Rule::Integer]),
        ];
        let e = validate(&obj(json!({})), &fields, &[]).unwrap_err();
        assert_eq!(e.errors[0].1[0], "The user field is required when none of email / departamento are present.");
        assert_eq!(
            e.message(),
            "The user field is required when none of email / departamento are present. (and 2 more errors)"
        );
        assert!(validate(&obj(json!({"departamento": 1})), &fields, &[]).is_ok());
        assert!(validate(&obj(json!({"departamento": "1"})), &fields, &[]).is_ok());
        let e = validate(&obj(json!({"departamento": "uno"})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The departamento field must be an integer.");
        let with = [field("name", vec![Rule::RequiredWith(&["attachments"])])];
        let e = validate(&obj(json!({"attachments": [1]})), &with, &[]).unwrap_err();
        assert_eq!(e.message(), "The name field is required when attachments is present.");
        assert!(validate(&obj(json!({"attachments": []})), &with, &[]).is_ok());
    }

    #[test]
    fn regex_min_max_on_a_pin() {
        static D: &LazyLock<Regex> = &DIGITS;
        let fields = [field("pin", vec![Rule::Regex(D), Rule::Min(4), Rule::Max(12)])];
        assert!(validate(&obj(json!({"pin": "1234"})), &fields, &[]).is_ok());
        let e = validate(&obj(json!({"pin": "12a"})), &fields, &[]).unwrap_err();
        assert_eq!(
            e.errors[0].1,
            vec!["The pin field format is invalid.", "The pin field must be at least 4 characters."]
        );
        let e = validate(&obj(json!({"pin": "١٢٣٤"})), &fields, &[]).unwrap_err();
        assert_eq!(e.errors[0].1, vec!["The pin field format is invalid."]);
        let e = validate(&obj(json!({"pin": "1234567890123"})), &fields, &[]).unwrap_err();
        assert_eq!(e.errors[0].1, vec!["The pin field must not be greater than 12 characters."]);
    }

    #[test]
    fn list_items_are_reported_with_their_index() {
        let items = vec![(
            "attachments",
            vec![field("name", vec![Rule::Required, Rule::String]), field("type", vec![Rule::Required])],
        )];
        let e =
            validate(&obj(json!({"attachments": [{"name": "a", "type": "t"}, {"name": 3}]})), &[], &items).unwrap_err();
        assert_eq!(
            e.errors[0],
            ("attachments.1.name".into(), vec!["The attachments.1.name field must be a string.".into()])
        );
        assert_eq!(e.errors[1].0, "attachments.1.type");
    }

    #[test]
    fn required_if_and_confirmed() {
        let fields = [
            field("password", vec![Rule::RequiredIf("modo", "normal"), Rule::Confirmed]),
            field("pin", vec![Rule::RequiredIf("modo", "pin")]),
        ];
        let e = validate(&obj(json!({"modo": "normal"})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The password field is required when modo is normal.");
        let e = validate(&obj(json!({"modo": "pin"})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The pin field is required when modo is pin.");
        let e = validate(&obj(json!({"modo": "normal", "password": "a", "password_confirmation": "b"})), &fields, &[])
            .unwrap_err();
        assert_eq!(e.message(), "The password field confirmation does not match.");
        assert!(
            validate(&obj(json!({"modo": "normal", "password": "a", "password_confirmation": "a"})), &fields, &[])
                .is_ok()
        );
    }

    #[test]
    fn emails_and_datetimes() {
        let fields = [field("e", vec![Rule::Email]), field("d", vec![Rule::DateTime])];
        assert!(validate(&obj(json!({"e": "test0@cyberfuel.com", "d": "2025-10-10 12:00:00"})), &fields, &[]).is_ok());
        for bad in ["a", "a@", "@b.c", "a b@c.d", "a@b..c"] {
            assert!(validate(&obj(json!({"e": bad})), &fields, &[]).is_err(), "{bad}");
        }
        let mailbox = [field("m", vec![Rule::Mailbox])];
        for ok in ["ana@x.test", "Ana Pérez <ana@x.test>", "\"Pérez, Ana\" <ana@x.test>"] {
            assert!(validate(&obj(json!({"m": ok})), &mailbox, &[]).is_ok(), "{ok}");
        }
        for bad in ["Ana <no>", "Ana", "<>", "a@x.test, b@y.test"] {
            assert!(validate(&obj(json!({"m": bad})), &mailbox, &[]).is_err(), "{bad}");
        }
        let list = [field("l", vec![Rule::MailboxList])];
        for ok in [
            "ana@x.test",
            "ana@x.test, Bea <bea@y.test>",
            "\"Pérez, Ana\" <ana@x.test>; bea@y.test,",
            "\"Ana \\\"la jefa\\\", sí\" <ana@x.test>",
        ] {
            assert!(validate(&obj(json!({"l": ok})), &list, &[]).is_ok(), "{ok}");
        }
        for bad in ["ana@x.test, nadie", ", ;", "Ana <ana@x.test, bea@y.test"] {
            let e = validate(&obj(json!({"l": bad})), &list, &[]).unwrap_err();
            assert_eq!(e.message(), "The l field must be a valid email address.", "{bad}");
        }
        let e = validate(&obj(json!({"d": "2025-13-10 12:00:00"})), &fields, &[]).unwrap_err();
        assert_eq!(e.message(), "The d field must match the format Y-m-d H:i:s.");
    }

    #[test]
    fn dates_and_booleans() {
        let fields = [field("desde", vec![Rule::Date]), field("interna", vec![Rule::Boolean])];
        for ok in [json!({"desde": "2026-11-30"}), json!({"desde": "2026-11-30 08:15:00", "interna": true})] {
            assert!(validate(&obj(ok.clone()), &fields, &[]).is_ok(), "{ok}");
        }
        for v in [json!(true), json!(false), json!(0), json!(1), json!("1"), json!("0"), json!("true"), json!("false")]
        {
            assert!(validate(&obj(json!({"interna": v.clone()})), &fields, &[]).is_ok(), "{v}");
        }
        let e = validate(&obj(json!({"desde": "2026-13-01", "interna": "sí"})), &fields, &[]).unwrap_err();
        assert_eq!(e.errors[0], ("desde".into(), vec!["The desde field must be a valid date.".into()]));
        assert_eq!(e.errors[1], ("interna".into(), vec!["The interna field must be true or false.".into()]));
        assert_eq!(parse_date("2026-11-30").unwrap().to_string(), "2026-11-30 00:00:00");
        assert!(validate(&obj(json!({"interna": 2})), &fields, &[]).is_err());
    }
}
