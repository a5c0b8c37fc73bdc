//! DynamoDB's attribute-value JSON: [`AttributeValue`]s and [`Item`]s to and from the JSON that
//! DynamoDB's wire protocol speaks (`{"user": {"S": "u1"}, "age": {"N": "30"}}`).
//!
//! The native HTTP API (`/tables/...`) uses it for items, and the DynamoDB API will reuse it, so
//! both speak one mapping. This module owns that mapping and nothing else: it knows no table,
//! key schema or request.
//!
//! | type | JSON |
//! |---|---|
//! | `S` | `{"S": "text"}` |
//! | `N` | `{"N": "30"}`: a JSON *string* holding the number (exact, up to 38 digits) |
//! | `B` | `{"B": "AAEC"}`: standard base64 (padding optional on input, written padded) |
//! | `BOOL` | `{"BOOL": true}` |
//! | `NULL` | `{"NULL": true}` (`false` is refused, as DynamoDB does) |
//! | `M` | `{"M": {"name": <value>, ...}}` |
//! | `L` | `{"L": [<value>, ...]}` |
//! | `SS`, `NS`, `BS` | `{"SS": ["a", "b"]}`, `{"NS": ["1", "2.5"]}`, `{"BS": ["AAE="]}` |
//!
//! # Guarantees
//! - Parsing never panics, and a refusal ([`AttributeJsonError`]) names the attribute by its
//!   path (`address.lines[2]`) and what was wrong there: an unknown type descriptor, a shape
//!   that does not fit its descriptor, a number that does not parse or is out of DynamoDB's
//!   range, bad base64, an empty set, a duplicate in a set.
//! - A parsed item passed [`Item::new`]'s checks (sizes, nesting, names).
//! - Writing then parsing gives the same value back (property-tested); numbers are written in
//!   their canonical plain form (`1.50` comes back as `1.5`), sets in their sorted order.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ringstore_core::item::number::NumberError;
use ringstore_core::item::{AttributeValue, Item, ItemError, Number};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

/// Every type descriptor, in DynamoDB's order of its documentation.
pub const TYPE_DESCRIPTORS: &str = "S, N, B, BOOL, NULL, M, L, SS, NS, BS";

/// Standard base64, padded on output, padding optional on input.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why JSON is not an item or an attribute value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttributeJsonError {
    /// The item (or a map of attributes) is not a JSON object.
    #[error("an item must be a JSON object of attributes, not {found}")]
    NotAnObject {
        /// What was there instead (`an array`, `a string`, ...).
        found: &'static str,
    },
    /// A value is not an object with exactly one type descriptor.
    #[error(
        "attribute `{path}`: a value must be an object with exactly one type descriptor \
         ({TYPE_DESCRIPTORS}), not {found}"
    )]
    NotATypedValue {
        /// The attribute's path.
        path: String,
        /// What was there instead.
        found: String,
    },
    /// The type descriptor is none of DynamoDB's.
    #[error(
        "attribute `{path}`: unknown type descriptor `{descriptor}` (expected one of \
         {TYPE_DESCRIPTORS})"
    )]
    UnknownType {
        /// The attribute's path.
        path: String,
        /// The descriptor given (cut to 40 characters).
        descriptor: String,
    },
    /// The descriptor's content has the wrong JSON type.
    #[error("attribute `{path}`: {descriptor} takes {expected}, not {found}")]
    WrongShape {
        /// The attribute's path.
        path: String,
        /// The type descriptor.
        descriptor: &'static str,
        /// What it takes.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
    /// A number does not parse or is out of DynamoDB's range or precision.
    #[error("attribute `{path}`: {error}")]
    BadNumber {
        /// The attribute's path.
        path: String,
        /// The number parser's reason.
        error: NumberError,
    },
    /// A binary is not base64.
    #[error("attribute `{path}`: {descriptor} is not standard base64: {detail}")]
    BadBase64 {
        /// The attribute's path.
        path: String,
        /// `B` or `BS`.
        descriptor: &'static str,
        /// The decoder's reason.
        detail: String,
    },
    /// A set is empty (DynamoDB has no empty sets).
    #[error("attribute `{path}`: an {descriptor} set may not be empty")]
    EmptySet {
        /// The attribute's path.
        path: String,
        /// `SS`, `NS` or `BS`.
        descriptor: &'static str,
    },
    /// A set holds an element twice (for numbers: numerically, `1.5` and `1.50`).
    #[error("attribute `{path}`: the {descriptor} set holds {element} more than once")]
    DuplicateInSet {
        /// The attribute's path.
        path: String,
        /// `SS`, `NS` or `BS`.
        descriptor: &'static str,
        /// The repeated element, as given (cut to 40 characters).
        element: String,
    },
    /// The values parsed but the item breaks one of DynamoDB's limits.
    #[error(transparent)]
    Item(#[from] ItemError),
}

/// An item parsed from a JSON object of attributes, checked by [`Item::new`].
pub fn item_from_json(json: &Json) -> Result<Item, AttributeJsonError> {
    Ok(Item::new(attributes_from_json(json)?)?)
}

/// A JSON object of attributes (an item, a key, expression values), each value parsed; the
/// values are checked ([`AttributeValue::check`]) but the whole is not held to an item's limits.
pub fn attributes_from_json(
    json: &Json,
) -> Result<BTreeMap<String, AttributeValue>, AttributeJsonError> {
    let Json::Object(object) = json else {
        return Err(AttributeJsonError::NotAnObject {
            found: json_kind(json),
        });
    };
    let mut attributes = BTreeMap::new();
    for (name, value) in object {
        let value = value_from_json(name, value)?;
        value.check()?;
        attributes.insert(name.clone(), value);
    }
    Ok(attributes)
}

/// One attribute value; `path` names it in errors (its attribute name, or a nested path).
pub fn value_from_json(path: &str, json: &Json) -> Result<AttributeValue, AttributeJsonError> {
    let Json::Object(object) = json else {
        return Err(AttributeJsonError::NotATypedValue {
            path: path.to_string(),
            found: json_kind(json).to_string(),
        });
    };
    let mut entries = object.iter();
    let (Some((descriptor, content)), None) = (entries.next(), entries.next()) else {
        let found = match object.len() {
            0 => "an empty object".to_string(),
            n => format!("an object with {n} keys"),
        };
        return Err(AttributeJsonError::NotATypedValue {
            path: path.to_string(),
            found,
        });
    };
    let shape = |descriptor: &'static str, expected: &'static str| AttributeJsonError::WrongShape {
        path: path.to_string(),
        descriptor,
        expected,
        found: json_kind(content),
    };
    match descriptor.as_str() {
        "S" => match content {
            Json::String(text) => Ok(AttributeValue::S(text.clone())),
            _ => Err(shape("S", "a string")),
        },
        "N" => match content {
            Json::String(text) => Ok(AttributeValue::N(number(path, text)?)),
            _ => Err(shape("N", "a string holding a number, like \"30\"")),
        },
        "B" => match content {
            Json::String(text) => Ok(AttributeValue::B(binary(path, "B", text)?)),
            _ => Err(shape("B", "a base64 string")),
        },
        "BOOL" => match content {
            Json::Bool(b) => Ok(AttributeValue::Bool(*b)),
            _ => Err(shape("BOOL", "true or false")),
        },
        "NULL" => match content {
            Json::Bool(true) => Ok(AttributeValue::Null),
            _ => Err(AttributeJsonError::WrongShape {
                path: path.to_string(),
                descriptor: "NULL",
                expected: "true",
                found: match content {
                    Json::Bool(false) => "false",
                    other => json_kind(other),
                },
            }),
        },
        "M" => match content {
            Json::Object(map) => {
                let mut values = BTreeMap::new();
                for (name, value) in map {
                    let value = value_from_json(&format!("{path}.{name}"), value)?;
                    values.insert(name.clone(), value);
                }
                Ok(AttributeValue::M(values))
            }
            _ => Err(shape("M", "an object of named values")),
        },
        "L" => match content {
            Json::Array(list) => {
                let mut values = Vec::with_capacity(list.len());
                for (i, value) in list.iter().enumerate() {
                    values.push(value_from_json(&format!("{path}[{i}]"), value)?);
                }
                Ok(AttributeValue::L(values))
            }
            _ => Err(shape("L", "an array of values")),
        },
        "SS" => {
            let texts = set_elements(path, "SS", content, "an array of strings")?;
            let set = unique(path, "SS", texts, |text| Ok(text.to_string()))?;
            Ok(AttributeValue::Ss(set))
        }
        "NS" => {
            let texts = set_elements(path, "NS", content, "an array of number strings")?;
            let set = unique(path, "NS", texts, |text| number(path, text))?;
            Ok(AttributeValue::Ns(set))
        }
        "BS" => {
            let texts = set_elements(path, "BS", content, "an array of base64 strings")?;
            let set = unique(path, "BS", texts, |text| binary(path, "BS", text))?;
            Ok(AttributeValue::binary_set(set)?)
        }
        other => Err(AttributeJsonError::UnknownType {
            path: path.to_string(),
            descriptor: other.chars().take(40).collect(),
        }),
    }
}

fn number(path: &str, text: &str) -> Result<Number, AttributeJsonError> {
    Number::parse(text).map_err(|error| AttributeJsonError::BadNumber {
        path: path.to_string(),
        error,
    })
}

fn binary(path: &str, descriptor: &'static str, text: &str) -> Result<Vec<u8>, AttributeJsonError> {
    BASE64
        .decode(text)
        .map_err(|error| AttributeJsonError::BadBase64 {
            path: path.to_string(),
            descriptor,
            detail: error.to_string(),
        })
}

/// A set's elements as strings: a non-empty array of strings.
fn set_elements<'a>(
    path: &str,
    descriptor: &'static str,
    content: &'a Json,
    expected: &'static str,
) -> Result<Vec<&'a str>, AttributeJsonError> {
    let wrong = |found: &'static str| AttributeJsonError::WrongShape {
        path: path.to_string(),
        descriptor,
        expected,
        found,
    };
    let Json::Array(list) = content else {
        return Err(wrong(json_kind(content)));
    };
    if list.is_empty() {
        return Err(AttributeJsonError::EmptySet {
            path: path.to_string(),
            descriptor,
        });
    }
    list.iter()
        .map(|element| match element {
            Json::String(text) => Ok(text.as_str()),
            other => Err(wrong(json_kind(other))),
        })
        .collect()
}

/// The set of the parsed elements, refusing one that repeats.
fn unique<T: Ord>(
    path: &str,
    descriptor: &'static str,
    texts: Vec<&str>,
    parse: impl Fn(&str) -> Result<T, AttributeJsonError>,
) -> Result<BTreeSet<T>, AttributeJsonError> {
    let mut set = BTreeSet::new();
    for text in texts {
        if !set.insert(parse(text)?) {
            return Err(AttributeJsonError::DuplicateInSet {
                path: path.to_string(),
                descriptor,
                element: format!("{:?}", text.chars().take(40).collect::<String>()),
            });
        }
    }
    Ok(set)
}

/// What a JSON value is, for error messages.
pub fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a JSON number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Writes an attribute value as DynamoDB JSON (`{"N": "30"}`).
#[derive(Clone, Copy, Debug)]
pub struct ValueJson<'a>(pub &'a AttributeValue);

/// Writes an item as a JSON object of DynamoDB JSON values.
#[derive(Clone, Copy, Debug)]
pub struct ItemJson<'a>(pub &'a Item);

/// Writes named attributes (an item's, a key's) as a JSON object of DynamoDB JSON values.
#[derive(Clone, Copy, Debug)]
pub struct AttributesJson<'a>(pub &'a BTreeMap<String, AttributeValue>);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let descriptor = self.0.type_name();
        match self.0 {
            AttributeValue::S(text) => map.serialize_entry(descriptor, text)?,
            AttributeValue::N(number) => map.serialize_entry(descriptor, &number.to_string())?,
            AttributeValue::B(bytes) => map.serialize_entry(descriptor, &BASE64.encode(bytes))?,
            AttributeValue::Bool(b) => map.serialize_entry(descriptor, b)?,
            AttributeValue::Null => map.serialize_entry(descriptor, &true)?,
            AttributeValue::M(values) => {
                map.serialize_entry(descriptor, &AttributesJson(values))?
            }
            AttributeValue::L(values) => {
                let values: Vec<ValueJson<'_>> = values.iter().map(ValueJson).collect();
                map.serialize_entry(descriptor, &values)?;
            }
            AttributeValue::Ss(set) => map.serialize_entry(descriptor, set)?,
            AttributeValue::Ns(set) => {
                let texts: Vec<String> = set.iter().map(Number::to_string).collect();
                map.serialize_entry(descriptor, &texts)?;
            }
            AttributeValue::Bs(set) => {
                let texts: Vec<String> = set.iter().map(|b| BASE64.encode(b)).collect();
                map.serialize_entry(descriptor, &texts)?;
            }
        }
        map.end()
    }
}

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, ValueJson(value))))
    }
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AttributesJson(self.0.attributes()).serialize(serializer)
    }
}

/// An owned item that (de)serializes as DynamoDB JSON: for bodies both a node writes and a
/// client reads (a refusal to parse carries the [`AttributeJsonError`]'s message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonItem(pub Item);

impl Serialize for JsonItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ItemJson(&self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        item_from_json(&json)
            .map(JsonItem)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(json: Json) -> Result<Item, AttributeJsonError> {
        item_from_json(&json)
    }

    fn to_json(item: &Item) -> Json {
        serde_json::to_value(ItemJson(item)).unwrap()
    }

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    // Every type reads as DynamoDB writes it and is written back the same way.
    #[test]
    fn every_type_reads_and_writes_as_dynamodb_json() {
        let json = json!({
            "user": {"S": "u1"}, "age": {"N": "30"}, "tags": {"SS": ["b", "a"]},
            "blob": {"B": "AAEC"}, "ok": {"BOOL": true}, "x": {"NULL": true},
            "m": {"M": {"inner": {"N": "-1.50"}, "l": {"L": [{"S": ""}, {"NULL": true}]}}},
            "scores": {"NS": ["1", "2.5"]}, "blobs": {"BS": ["AA==", "AQ"]}
        });
        let item = parse(json).unwrap();
        assert_eq!(item.get("age"), Some(&AttributeValue::N(n("30"))));
        assert_eq!(item.get("blob"), Some(&AttributeValue::B(vec![0, 1, 2])));
        let AttributeValue::M(m) = item.get("m").unwrap() else {
            panic!("a map")
        };
        assert_eq!(m.get("inner"), Some(&AttributeValue::N(n("-1.5"))));
        // Written back canonical: sorted sets, plain numbers, padded base64.
        assert_eq!(
            to_json(&item),
            json!({
                "user": {"S": "u1"}, "age": {"N": "30"}, "tags": {"SS": ["a", "b"]},
                "blob": {"B": "AAEC"}, "ok": {"BOOL": true}, "x": {"NULL": true},
                "m": {"M": {"inner": {"N": "-1.5"}, "l": {"L": [{"S": ""}, {"NULL": true}]}}},
                "scores": {"NS": ["1", "2.5"]}, "blobs": {"BS": ["AA==", "AQ=="]}
            })
        );
    }

    // Each kind of bad input is refused with an error naming the attribute and the problem.
    #[test]
    fn bad_values_are_refused_naming_the_attribute() {
        let cases: Vec<(Json, &str)> = vec![
            (
                json!([1]),
                "must be a JSON object of attributes, not an array",
            ),
            (
                json!({"a": "plain"}),
                "attribute `a`: a value must be an object",
            ),
            (json!({"a": {}}), "not an empty object"),
            (json!({"a": {"S": "x", "N": "1"}}), "an object with 2 keys"),
            (
                json!({"a": {"X": "1"}}),
                "attribute `a`: unknown type descriptor `X`",
            ),
            (json!({"a": {"s": "1"}}), "unknown type descriptor `s`"),
            (
                json!({"a": {"N": 30}}),
                "attribute `a`: N takes a string holding a number",
            ),
            (
                json!({"a": {"N": "abc"}}),
                "attribute `a`: \"abc\" is not a decimal number",
            ),
            (
                json!({"a": {"N": "1E+200"}}),
                "attribute `a`: magnitude above the largest",
            ),
            (
                json!({"a": {"B": "!!"}}),
                "attribute `a`: B is not standard base64",
            ),
            (
                json!({"a": {"SS": []}}),
                "attribute `a`: an SS set may not be empty",
            ),
            (
                json!({"a": {"NS": ["1", "1.0"]}}),
                "the NS set holds \"1.0\" more than once",
            ),
            (
                json!({"a": {"SS": ["x", 1]}}),
                "SS takes an array of strings, not a JSON number",
            ),
            (
                json!({"a": {"BS": ["AA", "*"]}}),
                "attribute `a`: BS is not standard base64",
            ),
            (
                json!({"a": {"NULL": false}}),
                "attribute `a`: NULL takes true, not false",
            ),
            (
                json!({"a": {"BOOL": "yes"}}),
                "BOOL takes true or false, not a string",
            ),
            (
                json!({"a": {"M": []}}),
                "M takes an object of named values, not an array",
            ),
            (
                json!({"a": {"L": {}}}),
                "L takes an array of values, not an object",
            ),
            (
                json!({"a": {"M": {"b": {"L": [{"S": "ok"}, {"N": "x"}]}}}}),
                "attribute `a.b[1]`: \"x\" is not a decimal number",
            ),
            (
                json!({"a": {"M": {"": {"S": "x"}}}}),
                "an attribute name may not be empty",
            ),
            (
                json!({"": {"S": "x"}}),
                "an attribute name may not be empty",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(json.clone()).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{json}: `{error}` lacks `{expected}`"
            );
        }
    }

    // Maps and lists nested past DynamoDB's 32 levels are refused by the item's check.
    #[test]
    fn nesting_past_the_limit_is_refused() {
        let mut value = json!({"NULL": true});
        for _ in 0..40 {
            value = json!({ "L": [value] });
        }
        let error = parse(json!({ "deep": value })).unwrap_err();
        assert!(matches!(
            error,
            AttributeJsonError::Item(ItemError::NestingTooDeep { .. })
        ));
    }

    // The owned wrapper reads and writes the same JSON, and a refusal keeps its message.
    #[test]
    fn json_items_deserialize_through_serde() {
        let item: JsonItem = serde_json::from_str(r#"{"k": {"S": "v"}}"#).unwrap();
        assert_eq!(item.0.get("k"), Some(&AttributeValue::S("v".into())));
        assert_eq!(serde_json::to_string(&item).unwrap(), r#"{"k":{"S":"v"}}"#);
        let error = serde_json::from_str::<JsonItem>(r#"{"k": {"Q": "v"}}"#).unwrap_err();
        assert!(error.to_string().contains("unknown type descriptor `Q`"));
    }

    fn number_strategy() -> impl Strategy<Value = Number> {
        prop_oneof![
            any::<i64>().prop_map(Number::from_i64),
            (1u128..10u128.pow(38), -130i32..=87).prop_filter_map(
                "a number within DynamoDB's range",
                |(mantissa, exponent)| Number::parse(&format!("{mantissa}E{exponent}")).ok()
            ),
        ]
    }

    fn value_strategy() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            ".*".prop_map(AttributeValue::S),
            number_strategy().prop_map(AttributeValue::N),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(AttributeValue::B),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null),
            proptest::collection::btree_set(".*", 1..4).prop_map(AttributeValue::Ss),
            proptest::collection::btree_set(number_strategy(), 1..4).prop_map(AttributeValue::Ns),
            proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..8), 1..4)
                .prop_map(|set| AttributeValue::binary_set(set).unwrap()),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                proptest::collection::btree_map(".+", inner, 0..4).prop_map(AttributeValue::M),
            ]
        })
    }

    proptest! {
        // Any value written as DynamoDB JSON, as text, parses back to itself.
        #[test]
        fn values_round_trip(value in value_strategy()) {
            let text = serde_json::to_string(&ValueJson(&value)).unwrap();
            let json: Json = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(value_from_json("v", &json).unwrap(), value);
        }

        // Any item round-trips, through the borrowed writer and the owned wrapper alike.
        #[test]
        fn items_round_trip(
            attributes in proptest::collection::btree_map(".+", value_strategy(), 0..6)
        ) {
            let item = Item::new(attributes).unwrap();
            let text = serde_json::to_string(&ItemJson(&item)).unwrap();
            let parsed: JsonItem = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed.0, &item);
            prop_assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        }

        // Arbitrary JSON is parsed or refused, never a panic.
        #[test]
        fn arbitrary_json_never_panics(text in r#"[\[\]{}":,0-9a-zA-Z ]{0,60}"#) {
            if let Ok(json) = serde_json::from_str::<Json>(&text) {
                let _ = item_from_json(&json);
                let _ = value_from_json("v", &json);
            }
        }
    }
}
