//! Compilation of flagd targeting JSON into an [`Expr`].

use super::flagd_ops::parse_flagd_version;
use super::value::is_whole;
use super::*;

/// Compiles flagd targeting JSON into an [`Expr`], interning attribute paths into `body.attrs`
/// and long literal string lists into `body.lists`. `evaluators` is the file's `$evaluators`
/// object, for `{"$ref": "name"}`.
///
/// Errors (a message naming the construct) are for what the edge must not run or this crate
/// does not support: unknown operators, nesting deeper than [`crate::MAX_RULE_DEPTH`], malformed
/// `fractional` or `sem_ver`, `$ref` cycles, a `$ref` to an evaluator that does not exist. The
/// publisher serves a flag whose targeting fails here as `PARSE_ERROR` (flagd refuses such
/// targeting when it loads the file, and answers that flag with the caller's default).
pub fn compile_targeting(
    rule: &Value,
    evaluators: &Map<String, Value>,
    body: &mut Body,
) -> Result<Expr, String> {
    let mut compiler = Compiler {
        evaluators,
        body,
        refs: Vec::new(),
        in_iteration: 0,
    };
    compiler.compile(rule, 0)
}

struct Compiler<'c> {
    evaluators: &'c Map<String, Value>,
    body: &'c mut Body,
    /// `$ref`s being expanded, to reject cycles.
    refs: Vec<String>,
    /// How many array-operator bodies enclose the expression being compiled: inside one,
    /// `var` reads the current element.
    in_iteration: usize,
}

impl Compiler<'_> {
    fn compile(&mut self, rule: &Value, depth: usize) -> Result<Expr, String> {
        if depth > MAX_RULE_DEPTH {
            return Err(format!(
                "targeting is nested deeper than {MAX_RULE_DEPTH} levels"
            ));
        }
        match rule {
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|i| self.compile(i, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(fold_array(items))
            }
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((op, args)) => self.compile_op(op, args, depth),
                None => Ok(Expr::Lit(rule.clone())),
            },
            _ => Ok(Expr::Lit(rule.clone())),
        }
    }

    fn compile_args(&mut self, args: &Value, depth: usize) -> Result<Vec<Expr>, String> {
        match args {
            Value::Array(items) => items.iter().map(|i| self.compile(i, depth + 1)).collect(),
            single => Ok(vec![self.compile(single, depth + 1)?]),
        }
    }

    fn compile_op(&mut self, op: &str, args: &Value, depth: usize) -> Result<Expr, String> {
        let logic = match op {
            "$ref" => return self.compile_ref(args, depth),
            "var" => return self.compile_var(args, depth),
            "missing" => return self.compile_missing(args),
            "in" => return self.compile_in(args, depth),
            "sem_ver" => return self.compile_sem_ver(args, depth),
            "fractional" => return self.compile_fractional(args, depth),
            "if" | "?:" => LogicOp::If,
            "==" => LogicOp::Eq,
            "===" => LogicOp::StrictEq,
            "!=" => LogicOp::Ne,
            "!==" => LogicOp::StrictNe,
            "!" => LogicOp::Not,
            "!!" => LogicOp::NotNot,
            "and" => LogicOp::And,
            "or" => LogicOp::Or,
            "<" => LogicOp::Lt,
            "<=" => LogicOp::Le,
            ">" => LogicOp::Gt,
            ">=" => LogicOp::Ge,
            "cat" => LogicOp::Cat,
            "substr" => LogicOp::Substr,
            "+" => LogicOp::Add,
            "-" => LogicOp::Sub,
            "*" => LogicOp::Mul,
            "/" => LogicOp::Div,
            "%" => LogicOp::Mod,
            "min" => LogicOp::Min,
            "max" => LogicOp::Max,
            "merge" => LogicOp::Merge,
            "starts_with" => LogicOp::StartsWith,
            "ends_with" => LogicOp::EndsWith,
            "map" => return self.compile_iteration(IterKind::Map, args, depth),
            "filter" => return self.compile_iteration(IterKind::Filter, args, depth),
            "reduce" => return self.compile_iteration(IterKind::Reduce, args, depth),
            "all" => return self.compile_iteration(IterKind::All, args, depth),
            "some" => return self.compile_iteration(IterKind::Some, args, depth),
            "none" => return self.compile_iteration(IterKind::None, args, depth),
            "missing_some" => return self.compile_missing_some(args, depth),
            // flagd-core's engine has no `log`: it refuses the targeting (PARSE_ERROR).
            "log" => return Err("`log` is not an operator flagd evaluates".to_string()),
            unknown => return Err(format!("unknown JSONLogic operator `{unknown}`")),
        };
        Ok(Expr::Op(logic, self.compile_args(args, depth)?))
    }

    fn compile_iteration(
        &mut self,
        kind: IterKind,
        args: &Value,
        depth: usize,
    ) -> Result<Expr, String> {
        let Value::Array(items) = args else {
            return Err("an array operator takes [array, expression]".to_string());
        };
        let (over, body, initial) = match (kind, items.as_slice()) {
            (IterKind::Reduce, [over, body]) => (over, body, None),
            (IterKind::Reduce, [over, body, initial]) => (over, body, Some(initial)),
            (IterKind::Reduce, _) => {
                return Err("`reduce` takes [array, expression, initial]".to_string());
            }
            (_, [over, body]) => (over, body, None),
            _ => return Err("an array operator takes [array, expression]".to_string()),
        };
        let over = self.compile(over, depth + 1)?;
        let initial = match initial {
            Some(i) => Some(self.compile(i, depth + 1)?),
            None => None,
        };
        self.in_iteration += 1;
        let body = self.compile(body, depth + 1);
        self.in_iteration -= 1;
        Ok(Expr::Iterate(Box::new(Iteration {
            kind,
            over,
            body: body?,
            initial,
        })))
    }

    fn compile_missing_some(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let Value::Array(items) = args else {
            return Err("`missing_some` takes [count, [names]]".to_string());
        };
        let [need, names] = items.as_slice() else {
            return Err("`missing_some` takes [count, [names]]".to_string());
        };
        let need = self.compile(need, depth + 1)?;
        let Expr::Missing(attrs) = self.compile_missing(names)? else {
            return Err("`missing_some` takes literal attribute names".to_string());
        };
        Ok(Expr::MissingSome(Box::new(need), attrs))
    }

    fn compile_ref(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let Value::String(name) = args else {
            return Err("`$ref` must name an evaluator".to_string());
        };
        let Some(target) = self.evaluators.get(name) else {
            return Err(format!("`$ref` to `{name}`, which is not in `$evaluators`"));
        };
        if self.refs.iter().any(|r| r == name) {
            return Err(format!("`$ref` cycle through evaluator `{name}`"));
        }
        self.refs.push(name.clone());
        let compiled = self.compile(target, depth + 1);
        self.refs.pop();
        compiled
    }

    fn intern_attr(&mut self, path: Vec<String>) -> Result<AttrId, String> {
        if let Some(i) = self.body.attrs.iter().position(|p| *p == path) {
            return AttrId::try_from(i).map_err(|_| "too many attributes".to_string());
        }
        let id = AttrId::try_from(self.body.attrs.len())
            .map_err(|_| "too many attributes".to_string())?;
        self.body.attrs.push(path);
        Ok(id)
    }

    /// The path of a `var`/`missing` name; `None` for flagd's `$flagd.*` properties.
    fn path_of(name: &Value) -> Result<Vec<String>, String> {
        let text = match name {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(
                    "`var` paths must be literal strings (computed paths are not supported)"
                        .to_string(),
                );
            }
        };
        let path: Vec<String> = text
            .split('.')
            .filter(|s| !s.is_empty())
            .map(ToString::to_string)
            .collect();
        if path.is_empty() {
            return Err("`var` of the whole context (empty path) is not supported".to_string());
        }
        Ok(path)
    }

    fn compile_var(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let (name, default) = match args {
            Value::Array(items) => match items.as_slice() {
                [name] => (name, None),
                [name, default, ..] => (name, Some(default)),
                [] if self.in_iteration > 0 => (&Value::Null, None),
                [] => {
                    return Err(
                        "`var` of the whole context (empty path) is not supported".to_string()
                    );
                }
            },
            name => (name, None),
        };
        let default = match default {
            Some(d) => Some(Box::new(self.compile(d, depth + 1)?)),
            None => None,
        };
        if self.in_iteration > 0 {
            let path = match name {
                Value::String(s) => s
                    .split('.')
                    .filter(|s| !s.is_empty())
                    .map(ToString::to_string)
                    .collect(),
                Value::Number(n) => vec![n.to_string()],
                Value::Null => Vec::new(),
                _ => return Err("`var` paths must be literal strings".to_string()),
            };
            return Ok(Expr::Scoped(path, default));
        }
        let path = Self::path_of(name)?;
        if path.first().is_some_and(|p| p == "$flagd") {
            // flagd replaces any `$flagd` in the context with its own properties.
            return Ok(match path.get(1).map(String::as_str) {
                Some("flagKey") if path.len() == 2 => Expr::FlagKey,
                Some("timestamp") if path.len() == 2 => Expr::Timestamp,
                _ => default.map_or(Expr::Lit(Value::Null), |d| *d),
            });
        }
        Ok(Expr::Var(self.intern_attr(path)?, default))
    }

    fn compile_missing(&mut self, args: &Value) -> Result<Expr, String> {
        let names = match args {
            Value::Array(items) => items.as_slice(),
            single => core::slice::from_ref(single),
        };
        let mut attrs = Vec::with_capacity(names.len());
        for name in names {
            let path = Self::path_of(name)
                .map_err(|_| "`missing` takes literal attribute names".to_string())?;
            attrs.push(self.intern_attr(path)?);
        }
        Ok(Expr::Missing(attrs))
    }

    fn compile_in(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        if let Value::Array(items) = args
            && let [needle, Value::Array(list)] = items.as_slice()
            && list.len() >= MIN_INTERNED_LIST
            && list.iter().all(Value::is_string)
        {
            let mut sorted: Vec<String> = list
                .iter()
                .filter_map(|v| v.as_str().map(ToString::to_string))
                .collect();
            sorted.sort_unstable();
            sorted.dedup();
            let needle = Box::new(self.compile(needle, depth + 1)?);
            let id = match self.body.lists.iter().position(|l| *l == sorted) {
                Some(i) => i,
                None => {
                    self.body.lists.push(sorted);
                    self.body.lists.len() - 1
                }
            };
            let id = ListId::try_from(id).map_err(|_| "too many lists".to_string())?;
            return Ok(Expr::InList(needle, id));
        }
        Ok(Expr::Op(LogicOp::In, self.compile_args(args, depth)?))
    }

    fn compile_sem_ver(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let Value::Array(items) = args else {
            return Ok(Expr::Lit(Value::Null));
        };
        // flagd answers null (the default variant) for a malformed sem_ver, rather than
        // refusing the flag: keep that behaviour.
        let [value, op, target] = items.as_slice() else {
            return Ok(Expr::Lit(Value::Null));
        };
        let cmp = match op {
            Value::String(op) => match op.as_str() {
                "=" => SemVerCmp::Eq,
                "!=" => SemVerCmp::Ne,
                "<" => SemVerCmp::Lt,
                "<=" => SemVerCmp::Le,
                ">" => SemVerCmp::Gt,
                ">=" => SemVerCmp::Ge,
                "^" => SemVerCmp::Caret,
                "~" => SemVerCmp::Tilde,
                _ => return Ok(Expr::Lit(Value::Null)),
            },
            Value::Object(_) => {
                return Err("the `sem_ver` operator must be a literal string".to_string());
            }
            _ => return Ok(Expr::Lit(Value::Null)),
        };
        let value = self.compile(value, depth + 1)?;
        let target = match self.compile(target, depth + 1)? {
            Expr::Lit(literal) => match parse_flagd_version(&Val::from_json(&literal)) {
                Some(version) => SemVerTarget::Version(version),
                None => return Ok(Expr::Lit(Value::Null)),
            },
            computed => SemVerTarget::Expr(computed),
        };
        Ok(Expr::SemVer(Box::new(SemVerTest { value, cmp, target })))
    }

    fn compile_fractional(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let items = match args {
            Value::Array(items) => items.as_slice(),
            _ => {
                return Err(
                    "`fractional` takes an array: [bucketing value,] [variant, weight]..."
                        .to_string(),
                );
            }
        };
        let (bucket_by, entries) = match items.split_first() {
            Some((first, rest)) if !first.is_array() => {
                (Some(self.compile(first, depth + 1)?), rest)
            }
            _ => (None, items),
        };
        if entries.is_empty() {
            return Err("`fractional` needs at least one [variant, weight] entry".to_string());
        }
        let mut buckets = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(pair) = entry else {
                return Err(
                    "each `fractional` entry must be an array [variant, weight]".to_string()
                );
            };
            let (variant, weight) = match pair.as_slice() {
                [variant] => (variant, None),
                [variant, weight] => (variant, Some(weight)),
                _ => {
                    return Err(
                        "each `fractional` entry must be [variant] or [variant, weight]"
                            .to_string(),
                    );
                }
            };
            if let Value::Number(w) = weight.unwrap_or(&Value::Null) {
                let w = w.as_f64().unwrap_or(f64::NAN);
                if !is_whole(w) || w > MAX_FRACTIONAL_WEIGHT as f64 {
                    return Err(format!(
                        "`fractional` weight {w} must be a whole number up to {MAX_FRACTIONAL_WEIGHT}"
                    ));
                }
            }
            let variant = self.compile(variant, depth + 2)?;
            let weight = match weight {
                Some(w) => Some(self.compile(w, depth + 2)?),
                None => None,
            };
            buckets.push(FractionalBucket { variant, weight });
        }
        let targeting_key = self.intern_attr(vec!["targetingKey".to_string()])?;
        Ok(Expr::Fractional(Box::new(Fractional {
            bucket_by,
            targeting_key,
            buckets,
        })))
    }
}

/// An array of literals is itself a literal: evaluated once, at compile time.
fn fold_array(items: Vec<Expr>) -> Expr {
    if items.iter().all(|i| matches!(i, Expr::Lit(_))) {
        let values = items
            .into_iter()
            .filter_map(|i| if let Expr::Lit(v) = i { Some(v) } else { None })
            .collect();
        Expr::Lit(Value::Array(values))
    } else {
        Expr::Array(items)
    }
}
