//! `publisher eval --flags PATH [--env ENV] --context JSON KEY [--json]`: evaluate one flag
//! locally with the edge's evaluator.
//!
//! The context is read as the edge reads a request: `--signed` is a verified token's claims
//! (`sub` is the targeting key), `--unsigned` the request body's `context`. Plain `--context`
//! is a signed-in user when it has a `targetingKey` (as if a token carried all of it) and an
//! anonymous request (unsigned attributes only) when it has none, so `--context '{}'` answers
//! what the edge answers without a token (permission flags serve their default). `--json` prints one object with OFREP's
//! field names. Exit 0 when the flag was evaluated (whatever its reason), 1 when the flags
//! could not be compiled (`PARSE_ERROR`) or the flag does not exist (`FLAG_NOT_FOUND`), 2 on a
//! bad `--context`.

use std::path::Path;
use std::process::ExitCode;

use flags_compile::blob_file::{Provenance, now_rfc3339, seal};
use flags_compile::{CompileOptions, compile_path};
use serde_json::{Map, Value, json};
use shared_eval::{Context, Evaluation, Snapshot, evaluate};

use super::{DEFAULT_ENV, print_diagnostics};

/// Arguments of `eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// Print one OFREP-shaped JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

/// What to evaluate: shared by `eval` and `explain`.
#[derive(Debug, clap::Args)]
pub struct Input {
    #[command(flatten)]
    pub flags: super::FlagsDir,
    /// Environment whose rules apply (ignored for flagd files).
    #[arg(long, default_value = DEFAULT_ENV)]
    pub env: String,
    /// Evaluation context as a JSON object, e.g. '{"targetingKey":"u1","user":{"plan":"premium"}}':
    /// with a targetingKey, a signed-in user whose token carries all of it; without, an
    /// anonymous request whose body carries it.
    #[arg(long, default_value = "{}", conflicts_with_all = ["signed", "unsigned"])]
    pub context: String,
    /// A verified identity token's claims, as the edge reads them (`sub` is the targeting key).
    #[arg(long)]
    pub signed: Option<String>,
    /// The request body's `context`: unsigned attributes, which flags read only where allowed.
    #[arg(long)]
    pub unsigned: Option<String>,
    /// Evaluate as of this RFC 3339 time instead of now (for before/after rules).
    #[arg(long)]
    pub now: Option<String>,
    /// The flag key.
    pub key: String,
}

/// A request's context as the edge builds it (edge-worker's `ofrep::handle`): the verified
/// token's claims are signed (registered claims dropped, `sub` as `targetingKey`), the body's
/// context is unsigned and may not restate the targeting key of a signed-in user.
pub struct EdgeRequest {
    /// Signed attributes (empty when anonymous).
    pub signed: Map<String, Value>,
    /// Unsigned attributes.
    pub unsigned: Map<String, Value>,
    /// Whether a verified identity made the request.
    pub verified: bool,
}

/// JWT claims the edge does not pass on as attributes (edge-worker's `identity.rs`).
const REGISTERED_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

impl EdgeRequest {
    /// `claims`: a verified token's claims, or `None` for an anonymous request.
    pub fn new(claims: Option<Map<String, Value>>, mut unsigned: Map<String, Value>) -> Self {
        let Some(claims) = claims else {
            return EdgeRequest {
                signed: Map::new(),
                unsigned,
                verified: false,
            };
        };
        let subject = claims
            .get("sub")
            .or_else(|| claims.get("targetingKey"))
            .cloned();
        let mut signed: Map<String, Value> = claims
            .into_iter()
            .filter(|(name, _)| !REGISTERED_CLAIMS.contains(&name.as_str()))
            .collect();
        if let Some(subject) = subject {
            signed.insert("targetingKey".into(), subject);
        }
        unsigned.remove("targetingKey");
        EdgeRequest {
            signed,
            unsigned,
            verified: true,
        }
    }

    /// The evaluator's view of it.
    pub fn context(&self) -> Context<'_> {
        Context::with_unsigned(&self.signed, &self.unsigned, self.verified)
    }
}

/// A compiled snapshot plus the parsed context and time.
pub struct Loaded {
    /// The flags, loaded as the edge loads a blob.
    pub snapshot: Box<Snapshot>,
    /// The request, as the edge would see it.
    pub request: EdgeRequest,
    /// `--now`, or the clock.
    pub now_ms: i64,
}

/// Why there is nothing to evaluate: the command already printed it; exit with `code`.
pub struct Failed {
    /// The exit code.
    pub code: u8,
    /// The compile error summary, for `--json`'s `PARSE_ERROR` answer.
    pub parse_error: Option<String>,
}

impl Input {
    /// Compiles the flags and parses the context; prints diagnostics on failure.
    pub fn load(&self) -> Result<Loaded, Failed> {
        let object = |flag: &str, text: &str| match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => {
                eprintln!("error: {flag} must be a JSON object");
                Err(Failed {
                    code: 2,
                    parse_error: None,
                })
            }
            Err(e) => {
                eprintln!("error: {flag} is not valid JSON: {e}");
                Err(Failed {
                    code: 2,
                    parse_error: None,
                })
            }
        };
        let request = if self.signed.is_some() || self.unsigned.is_some() {
            let signed = match &self.signed {
                Some(text) => Some(object("--signed", text)?),
                None => None,
            };
            let unsigned = match &self.unsigned {
                Some(text) => object("--unsigned", text)?,
                None => Map::new(),
            };
            EdgeRequest::new(signed, unsigned)
        } else {
            let context = object("--context", &self.context)?;
            if context
                .get("targetingKey")
                .and_then(Value::as_str)
                .is_some_and(|k| !k.is_empty())
            {
                EdgeRequest::new(Some(context), Map::new())
            } else {
                EdgeRequest::new(None, context)
            }
        };
        let now_ms = match &self.now {
            None => chrono::Utc::now().timestamp_millis(),
            Some(text) => match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(t) => t.timestamp_millis(),
                Err(e) => {
                    eprintln!("error: --now is not an RFC 3339 time: {e}");
                    return Err(Failed {
                        code: 2,
                        parse_error: None,
                    });
                }
            },
        };
        match compile_snapshot(&self.flags, &self.env) {
            Ok(snapshot) => Ok(Loaded {
                snapshot: Box::new(snapshot),
                request,
                now_ms,
            }),
            Err(summary) => Err(Failed {
                code: 1,
                parse_error: Some(summary),
            }),
        }
    }
}

/// Compiles `path` for `env` and loads it as the edge would. On failure prints the diagnostics
/// and returns a one-line summary.
pub fn compile_snapshot(path: &Path, env: &str) -> Result<Snapshot, String> {
    let compiled = compile_path(path, &CompileOptions::new(env)).map_err(|diags| {
        let (errors, _) = print_diagnostics(&diags);
        let first = diags
            .iter()
            .find(|d| d.severity == flags_compile::Severity::Error);
        match first {
            Some(d) if errors > 1 => format!("{d} (and {} more errors)", errors - 1),
            Some(d) => d.to_string(),
            None => "flags could not be compiled".to_owned(),
        }
    })?;
    let provenance = Provenance {
        author: "local".into(),
        source_commit: None,
        source_dirty: false,
        created_at: now_rfc3339(),
    };
    let blob = seal(compiled.body, env, 0, None, &provenance);
    Snapshot::from_blob(blob).map_err(|e| {
        eprintln!("error: compiled blob refused by the evaluator: {e}");
        format!("compiled blob refused by the evaluator: {e}")
    })
}

/// The evaluation as OFREP names it. `errorCode`/`errorDetails` appear only on error, `value`
/// and `variant` only when there is one.
pub fn ofrep_json(key: &str, eval: &Evaluation<'_>) -> Value {
    let mut out = Map::new();
    out.insert("key".into(), json!(key));
    if let Some(value) = eval.value {
        out.insert("value".into(), value.clone());
    }
    if let Some(variant) = eval.variant {
        out.insert("variant".into(), json!(variant));
    }
    out.insert("reason".into(), json!(eval.reason.as_str()));
    if let Some(code) = eval.error {
        out.insert("errorCode".into(), json!(code.as_str()));
        if let Some(details) = eval.error_details {
            out.insert("errorDetails".into(), json!(details));
        }
    }
    out.insert(
        "metadata".into(),
        Value::Object(eval.metadata.cloned().unwrap_or_default()),
    );
    Value::Object(out)
}

fn error_json(key: &str, code: &str, details: &str) -> Value {
    json!({ "key": key, "reason": "ERROR", "errorCode": code, "errorDetails": details, "metadata": {} })
}

/// Runs `eval`.
pub fn run(args: Args) -> ExitCode {
    let key = args.input.key.as_str();
    let Loaded {
        snapshot,
        request,
        now_ms,
    } = match args.input.load() {
        Ok(loaded) => loaded,
        Err(Failed { code, parse_error }) => {
            if let (true, Some(summary)) = (args.json, parse_error) {
                println!("{}", error_json(key, "PARSE_ERROR", &summary));
            }
            return ExitCode::from(code);
        }
    };
    if !snapshot.flag_keys().any(|k| k == key) {
        if args.json {
            println!(
                "{}",
                error_json(key, "FLAG_NOT_FOUND", "no flag with this key")
            );
        } else {
            eprintln!("error: no flag `{key}` in {}", args.input.flags.display());
        }
        return ExitCode::FAILURE;
    }
    let eval = evaluate(&snapshot, key, &request.context(), now_ms);
    if args.json {
        println!("{}", ofrep_json(key, &eval));
    } else {
        println!("{}", one_line(key, &eval));
    }
    ExitCode::SUCCESS
}

/// `new-chart = true (variant on, reason TARGETING_MATCH, rule 2)`.
pub fn one_line(key: &str, eval: &Evaluation<'_>) -> String {
    let value = eval
        .value
        .map_or_else(|| "(caller's default)".to_owned(), Value::to_string);
    let mut details = Vec::new();
    if let Some(variant) = eval.variant {
        details.push(format!("variant {variant}"));
    }
    details.push(format!("reason {}", eval.reason.as_str()));
    if let Some(rule) = eval.rule {
        details.push(format!("rule {rule}"));
    }
    if let Some(code) = eval.error {
        details.push(format!("error {}", code.as_str()));
    }
    if let Some(why) = eval.error_details {
        details.push(why.to_owned());
    }
    format!("{key} = {value} ({})", details.join(", "))
}
