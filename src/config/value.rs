//! Values a TMDA configuration can hold, with Python's display rules.

use std::fmt::Write as _;

/// A configuration value: the Python data types TMDA configs use.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// Python's name for the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
        }
    }

    /// Python truthiness (`if VALUE:`), which is how TMDA tests its switches.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(v) | Value::Tuple(v) => !v.is_empty(),
            Value::Dict(d) => !d.is_empty(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Roughly the bytes this value occupies, contents included (for the parser's limit).
    pub fn footprint(&self) -> usize {
        let own = std::mem::size_of::<Value>();
        match self {
            Value::Str(s) => own + s.len(),
            Value::List(v) | Value::Tuple(v) => own + v.iter().map(Value::footprint).sum::<usize>(),
            Value::Dict(d) => own + d.iter().map(|(k, v)| k.footprint() + v.footprint()).sum::<usize>(),
            _ => own,
        }
    }

    /// Python `str(value)`.
    pub fn py_str(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.py_repr(),
        }
    }

    /// Python `repr(value)`.
    pub fn py_repr(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => {
                if f.fract() == 0.0 && f.is_finite() {
                    format!("{f:.1}")
                } else {
                    f.to_string()
                }
            }
            Value::Str(s) => {
                let q = if s.contains('\'') && !s.contains('"') {
                    '"'
                } else {
                    '\''
                };
                let mut out = String::new();
                out.push(q);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c == q => {
                            out.push('\\');
                            out.push(c)
                        }
                        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                            let _ = write!(out, "\\x{:02x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push(q);
                out
            }
            Value::List(v) => format!("[{}]", join_repr(v)),
            Value::Tuple(v) if v.len() == 1 => format!("({},)", v[0].py_repr()),
            Value::Tuple(v) => format!("({})", join_repr(v)),
            Value::Dict(d) => {
                let items: Vec<String> = d
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.py_repr(), v.py_repr()))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
        }
    }
}

fn join_repr(v: &[Value]) -> String {
    v.iter().map(Value::py_repr).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_display_rules() {
        assert_eq!(Value::Str("it's".into()).py_repr(), "\"it's\"");
        assert_eq!(Value::Str("a\nb".into()).py_repr(), "'a\\nb'");
        assert_eq!(Value::Tuple(vec![Value::Int(1)]).py_repr(), "(1,)");
        assert_eq!(
            Value::List(vec![Value::Str("x".into()), Value::None]).py_repr(),
            "['x', None]"
        );
        assert_eq!(Value::Float(2.0).py_repr(), "2.0");
        assert_eq!(Value::Bool(true).py_str(), "True");
        assert!(!Value::Str(String::new()).is_truthy());
        assert!(Value::Int(2).is_truthy());
    }
}
