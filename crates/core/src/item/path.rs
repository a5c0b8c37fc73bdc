//! Document paths: `a.b[2].c`, the address of a value inside an item, as DynamoDB's expressions
//! name them (the DynamoDB API parses expressions into these).
//!
//! # Invariants
//! - A path starts with a top-level attribute name and has at least that one segment
//!   ([`AttributePath::new`] refuses an empty one), so [`AttributePath::attribute`] always
//!   names the top-level attribute a change lands in: the unit of conflict resolution.

use super::Item;
use super::value::AttributeValue;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One step of a path: a map key (or the top-level name), or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathSegment {
    /// A name: the top-level attribute, or a key inside a map.
    Name(String),
    /// An index into a list.
    Index(usize),
}

/// A path into an item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttributePath {
    /// The top-level attribute.
    attribute: String,
    /// The steps inside it.
    rest: Vec<PathSegment>,
}

/// A path that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a document path must start with an attribute name")]
pub struct EmptyPath;

impl AttributePath {
    /// The path of a top-level attribute.
    pub fn attribute_named(name: impl Into<String>) -> Self {
        Self {
            attribute: name.into(),
            rest: Vec::new(),
        }
    }

    /// A path from its segments; the first must be a name.
    pub fn new(segments: Vec<PathSegment>) -> Result<Self, EmptyPath> {
        let mut segments = segments.into_iter();
        match segments.next() {
            Some(PathSegment::Name(attribute)) => Ok(Self {
                attribute,
                rest: segments.collect(),
            }),
            _ => Err(EmptyPath),
        }
    }

    /// This path followed by a map key.
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.rest.push(PathSegment::Name(name.into()));
        self
    }

    /// This path followed by a list index.
    pub fn index(mut self, index: usize) -> Self {
        self.rest.push(PathSegment::Index(index));
        self
    }

    /// The top-level attribute the path is in.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// The steps below the top-level attribute.
    pub fn rest(&self) -> &[PathSegment] {
        &self.rest
    }

    /// Whether the path is a top-level attribute itself.
    pub fn is_top_level(&self) -> bool {
        self.rest.is_empty()
    }

    /// The value at this path in `item`, if there is one.
    pub fn resolve<'a>(&self, item: &'a Item) -> Option<&'a AttributeValue> {
        let top = item.get(&self.attribute)?;
        resolve_in(top, &self.rest)
    }
}

/// The value at `rest` below `value`.
fn resolve_in<'a>(value: &'a AttributeValue, rest: &[PathSegment]) -> Option<&'a AttributeValue> {
    let mut at = value;
    for segment in rest {
        at = match (segment, at) {
            (PathSegment::Name(name), AttributeValue::M(map)) => map.get(name)?,
            (PathSegment::Index(i), AttributeValue::L(list)) => list.get(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.attribute)?;
        for segment in &self.rest {
            match segment {
                PathSegment::Name(name) => write!(f, ".{name}")?,
                PathSegment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn paths_resolve_through_maps_and_lists() {
        let inner = AttributeValue::M(BTreeMap::from([(
            "c".to_string(),
            AttributeValue::S("deep".into()),
        )]));
        let list = AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Null, inner]);
        let b = AttributeValue::M(BTreeMap::from([("b".to_string(), list)]));
        let item = Item::new(BTreeMap::from([("a".to_string(), b)])).expect("an item");
        let path = AttributePath::attribute_named("a")
            .key("b")
            .index(2)
            .key("c");
        assert_eq!(path.to_string(), "a.b[2].c");
        assert_eq!(path.resolve(&item), Some(&AttributeValue::S("deep".into())));
        assert_eq!(
            AttributePath::attribute_named("a")
                .key("b")
                .index(7)
                .resolve(&item),
            None
        );
        assert_eq!(
            AttributePath::attribute_named("a").index(0).resolve(&item),
            None
        );
        assert_eq!(
            AttributePath::new(vec![PathSegment::Index(0)]),
            Err(EmptyPath)
        );
    }
}
