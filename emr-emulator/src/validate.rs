//! Reading a request as EMR validates it: the API's error kinds, a JSON object reader
//! ([`Obj`]) that knows each member's path (`instances.instanceFleets.1.member.name`) and
//! checks types, required members, enum values, ranges and list lengths with EMR's message
//! format, and the parsers of the members several operations share (tags, steps, the
//! auto-termination policy). The Instances member of RunJobFlow is in `instances.rs`.

use crate::cluster::StepSpec;
use serde_json::{Map, Value};

const ACTIONS: [&str; 4] = [
    "TERMINATE_JOB_FLOW",
    "TERMINATE_CLUSTER",
    "CANCEL_AND_WAIT",
    "CONTINUE",
];

pub(crate) struct ApiError {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    ApiError {
        kind: "ValidationException",
        message: message.into(),
    }
}

pub(crate) fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError {
        kind: "InvalidRequestException",
        message: message.into(),
    }
}

fn constraint(value: &str, path: &str, rule: &str) -> ApiError {
    validation(format!(
        "1 validation error detected: Value {value} at '{path}' failed to satisfy constraint: {rule}"
    ))
}

fn serialization(path: &str) -> ApiError {
    ApiError {
        kind: "SerializationException",
        message: format!("Unexpected value type at '{path}'"),
    }
}

/// A JSON object of a request, with the path of its members for messages.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn root(value: &'a Value) -> ApiResult<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: String::new(),
            }),
            _ => Err(serialization("")),
        }
    }

    /// `instances.instanceFleets.1.member.name`, as EMR names members.
    pub(crate) fn at(&self, key: &str) -> String {
        let mut chars = key.chars();
        let camel: String = chars
            .next()
            .map(|c| c.to_ascii_lowercase())
            .into_iter()
            .chain(chars)
            .collect();
        if self.path.is_empty() {
            camel
        } else {
            format!("{}.{camel}", self.path)
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn required<T>(&self, key: &str, value: Option<T>) -> ApiResult<T> {
        value.ok_or_else(|| constraint("null", &self.at(key), "Member must not be null"))
    }

    pub(crate) fn str(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(serialization(&self.at(key))),
        }
    }

    pub(crate) fn req_str(&self, key: &str) -> ApiResult<&'a str> {
        let value = self.str(key)?;
        let value = self.required(key, value)?;
        if value.is_empty() {
            let rule = "Member must have length greater than or equal to 1";
            return Err(constraint("''", &self.at(key), rule));
        }
        Ok(value)
    }

    pub(crate) fn bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(serialization(&self.at(key))),
        }
    }

    pub(crate) fn int(&self, key: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let n = value.as_i64().ok_or_else(|| serialization(&self.at(key)))?;
        let value = format!("'{n}'");
        if n < min {
            let rule = format!("Member must have value greater than or equal to {min}");
            return Err(constraint(&value, &self.at(key), &rule));
        }
        if n > max {
            let rule = format!("Member must have value less than or equal to {max}");
            return Err(constraint(&value, &self.at(key), &rule));
        }
        Ok(Some(n))
    }

    pub(crate) fn time(&self, key: &str) -> ApiResult<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| serialization(&self.at(key))),
        }
    }

    pub(crate) fn enumerated(&self, key: &str, allowed: &[&str]) -> ApiResult<Option<&'a str>> {
        let value = self.str(key)?;
        if let Some(v) = value
            && !allowed.contains(&v)
        {
            let rule = format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            );
            return Err(constraint(&format!("'{v}'"), &self.at(key), &rule));
        }
        Ok(value)
    }

    pub(crate) fn obj(&self, key: &str) -> ApiResult<Option<Obj<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: self.at(key),
            })),
            Some(_) => Err(serialization(&self.at(key))),
        }
    }

    pub(crate) fn req_obj(&self, key: &str) -> ApiResult<Obj<'a>> {
        let value = self.obj(key)?;
        self.required(key, value)
    }

    /// The items of a list member (none if absent), each with its path.
    pub(crate) fn list(&self, key: &str, max: usize) -> ApiResult<Vec<(String, &'a Value)>> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(serialization(&self.at(key))),
        };
        if items.len() > max {
            let rule = format!("Member must have length less than or equal to {max}");
            return Err(constraint("'[...]'", &self.at(key), &rule));
        }
        let path = self.at(key);
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}.{}.member", i + 1), v))
            .collect())
    }

    pub(crate) fn objs(&self, key: &str, max: usize) -> ApiResult<Vec<Obj<'a>>> {
        self.list(key, max)?
            .into_iter()
            .map(|(path, v)| match v {
                Value::Object(map) => Ok(Obj { map, path }),
                _ => Err(serialization(&path)),
            })
            .collect()
    }

    pub(crate) fn strs(&self, key: &str, max: usize) -> ApiResult<Vec<String>> {
        self.list(key, max)?
            .into_iter()
            .map(|(path, v)| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| serialization(&path))
            })
            .collect()
    }

    pub(crate) fn enums(&self, key: &str, allowed: &[&str]) -> ApiResult<Vec<String>> {
        let values = self.strs(key, 100)?;
        for (i, v) in values.iter().enumerate() {
            if !allowed.contains(&v.as_str()) {
                let rule = format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                );
                let path = format!("{}.{}.member", self.at(key), i + 1);
                return Err(constraint(&format!("'{v}'"), &path, &rule));
            }
        }
        Ok(values)
    }
}

pub(crate) fn require_nonempty<T>(o: &Obj, key: &str, items: &[T]) -> ApiResult<()> {
    if items.is_empty() {
        let rule = "Member must have length greater than or equal to 1";
        let value = if o.get(key).is_some() { "'[]'" } else { "null" };
        return Err(constraint(value, &o.at(key), rule));
    }
    Ok(())
}

pub(crate) fn idle_timeout(o: &Obj) -> ApiResult<Option<i64>> {
    match o.obj("AutoTerminationPolicy")? {
        Some(policy) => policy.int("IdleTimeout", 60, 604_800),
        None => Ok(None),
    }
}

pub(crate) fn parse_tags(o: &Obj) -> ApiResult<Vec<(String, String)>> {
    o.objs("Tags", 50)?
        .iter()
        .map(|t| {
            let key = t.req_str("Key")?;
            if key.len() > 128 {
                let rule = "Member must have length less than or equal to 128";
                return Err(constraint(&format!("'{key}'"), &t.at("Key"), rule));
            }
            Ok((key.to_string(), t.str("Value")?.unwrap_or("").to_string()))
        })
        .collect()
}

pub(crate) fn parse_steps(o: &Obj, key: &str) -> ApiResult<Vec<StepSpec>> {
    o.objs(key, 256)?
        .iter()
        .map(|s| {
            let name = s.req_str("Name")?;
            let action = s
                .enumerated("ActionOnFailure", &ACTIONS)?
                .unwrap_or("CONTINUE");
            let hadoop = s.req_obj("HadoopJarStep")?;
            let properties = hadoop
                .objs("Properties", 1000)?
                .iter()
                .map(|p| {
                    Ok((
                        p.str("Key")?.unwrap_or("").to_string(),
                        p.str("Value")?.unwrap_or("").to_string(),
                    ))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(StepSpec {
                name: name.into(),
                action_on_failure: action.into(),
                jar: hadoop.req_str("Jar")?.into(),
                args: hadoop.strs("Args", 10_000)?,
                properties,
                main_class: hadoop.str("MainClass")?.map(String::from),
            })
        })
        .collect()
}
