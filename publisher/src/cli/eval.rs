//! `publisher eval --flags PATH [--env ENV] --context JSON KEY [--json]`: evaluate one flag
//! locally with the edge's evaluator.
//!
//! `publisher eval --deployed --env ENV [--store S] --context JSON KEY`: the same question
//! answered as the edge answers it now: from the environment's deployed blob (kills and live
//! rollout stages are in it) and, while a canary runs, from the side this user gets
//! (`shared_eval::in_canary` on the pointer's salt and share and the request's targeting key,
//! the worker's own rule). The answer says which version and side answered (`--json`: the
//! edge's `flagsVersion` and `flagsTrack` metadata).
//!
//! The context is read as the edge reads a request: `--signed` is a verified token's claims
//! (`sub` is the targeting key), `--unsigned` the request body's `context`. Plain `--context`
//! is a signed-in user when it has a `targetingKey` (as if a token carried all of it) and an
//! anonymous request (unsigned attributes only) when it has none, so `--context '{}'` answers
//! what the edge answers without a token (permission flags serve their default). `--json` prints one object with OFREP's
//! field names. Exit 0 when the flag was evaluated (whatever its reason), 1 when the flags
//! could not be compiled (`PARSE_ERROR`), the deployed version could not be read (`GENERAL`)
//! or the flag does not exist (`FLAG_NOT_FOUND`), 2 on a bad `--context`.

use std::path::Path;
use std::process::ExitCode;

use flags_compile::blob_file::{Provenance, now_rfc3339, seal};
use flags_compile::{CompileOptions, compile_path};
use flags_store::publish::Environment;
use flags_store::store::{self, DEFAULT_STORE, STORE_ENV_VAR};
use serde_json::{Map, Value, json};
use shared_eval::{Context, Evaluation, Snapshot, evaluate, in_canary};

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
    /// Environment whose rules apply (ignored for flagd files); with --deployed, the
    /// environment whose deployed version answers.
    #[arg(long, default_value = DEFAULT_ENV)]
    pub env: String,
    /// Answer as the edge answers now instead of from files: the environment's deployed blob
    /// in --store (kills and live rollout stages included) and, while a canary runs, the side
    /// this user's targeting key gets.
    #[arg(long)]
    pub deployed: bool,
    /// The store --deployed reads: a directory or `s3://bucket/prefix`, as for `push`.
    #[arg(long, env = STORE_ENV_VAR, default_value = DEFAULT_STORE)]
    pub store: String,
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
        // The edge's rule, from the one definition both use (`shared_eval::claims`).
        shared_eval::claims::drop_restated_targeting_key(&mut unsigned);
        EdgeRequest {
            signed: shared_eval::claims::signed_attributes(claims),
            unsigned,
            verified: true,
        }
    }

    /// The evaluator's view of it.
    pub fn context(&self) -> Context<'_> {
        Context::with_unsigned(&self.signed, &self.unsigned, self.verified)
    }

    /// The key a split (and a canary) buckets by, as the edge takes it: the token's subject
    /// for a verified request, else the body's `targetingKey`.
    pub fn targeting_key(&self) -> Option<&str> {
        let attributes = if self.verified {
            &self.signed
        } else {
            &self.unsigned
        };
        attributes.get("targetingKey").and_then(Value::as_str)
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
    /// With `--deployed`: which version and side answered.
    pub served: Option<ServedBy>,
    /// Where the flags came from, for messages: the files, or the deployed version.
    pub source: String,
}

/// The deployed version and side that answer a request (`--deployed`), as the edge says in
/// its `X-Flags-Version` / `X-Flags-Track` headers.
pub struct ServedBy {
    /// The environment.
    pub env: String,
    /// The pointer's version.
    pub version: u64,
    /// `stable` or `canary`.
    pub track: &'static str,
    /// The running canary's share and start (`10% of users since version 6`), if one runs.
    pub canary: Option<String>,
}

impl std::fmt::Display for ServedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} version {}, {}", self.env, self.version, self.track)?;
        match (&self.canary, self.track) {
            (Some(canary), "canary") => write!(f, " ({canary})"),
            (Some(canary), _) => write!(f, " (beside a canary to {canary})"),
            (None, _) => Ok(()),
        }
    }
}

/// Why there is nothing to evaluate: the command already printed it; exit with `code`.
pub struct Failed {
    /// The exit code.
    pub code: u8,
    /// For `--json`'s error answer: its OFREP error code (`PARSE_ERROR` for flags that do not
    /// compile, `GENERAL` for a deployed version that cannot be read) and details.
    pub error: Option<(&'static str, String)>,
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
                    error: None,
                })
            }
            Err(e) => {
                eprintln!("error: {flag} is not valid JSON: {e}");
                Err(Failed {
                    code: 2,
                    error: None,
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
                        error: None,
                    });
                }
            },
        };
        // Files and the deployed version answer different questions: one at a time.
        if self.deployed && self.flags.given().is_some() {
            eprintln!("error: --deployed answers from the store: give no flags directory with it");
            return Err(Failed {
                code: 2,
                error: None,
            });
        }
        let flags = match self.deployed {
            false => self.flags.path(),
            true => {
                return match deployed_snapshot(&self.store, &self.env, request.targeting_key()) {
                    Ok((snapshot, served)) => Ok(Loaded {
                        snapshot: Box::new(snapshot),
                        request,
                        now_ms,
                        source: format!("{} version {}", served.env, served.version),
                        served: Some(served),
                    }),
                    Err(error) => {
                        eprintln!("error: {error}");
                        Err(Failed {
                            code: 1,
                            error: Some(("GENERAL", error)),
                        })
                    }
                };
            }
        };
        match compile_snapshot(flags, &self.env) {
            Ok(snapshot) => Ok(Loaded {
                snapshot: Box::new(snapshot),
                request,
                now_ms,
                served: None,
                source: flags.display().to_string(),
            }),
            Err(summary) => Err(Failed {
                code: 1,
                error: Some(("PARSE_ERROR", summary)),
            }),
        }
    }
}

/// What `env` of `store` serves the request with this targeting key now: the stable blob, or
/// the canary's for a user in its share (`shared_eval::in_canary`, the edge's rule), read back
/// with every check the edge makes.
pub fn deployed_snapshot(
    store: &str,
    env: &str,
    targeting_key: Option<&str>,
) -> Result<(Snapshot, ServedBy), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let deployed = runtime.block_on(async {
        let environment = Environment::new(store::open(store).await?, env)?;
        environment
            .deployed_all()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("nothing has been published to {env} yet"))
    })?;
    let pointer = &deployed.current.pointer;
    let (blob, track) = match (&pointer.canary, deployed.canary) {
        (Some(canary), Some(blob))
            if in_canary(&canary.salt, canary.percent.buckets(), targeting_key) =>
        {
            (blob, "canary")
        }
        _ => (deployed.stable, "stable"),
    };
    let served = ServedBy {
        env: env.to_owned(),
        version: pointer.version,
        track,
        canary: pointer
            .canary
            .as_ref()
            .map(|c| format!("{} of users since version {}", c.percent, c.since)),
    };
    let snapshot = Snapshot::from_blob(blob)
        .map_err(|e| format!("the deployed blob of {env} is refused by the evaluator: {e}"))?;
    Ok((snapshot, served))
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
        served,
        source,
    } = match args.input.load() {
        Ok(loaded) => loaded,
        Err(Failed { code, error }) => {
            if let (true, Some((code, details))) = (args.json, error) {
                println!("{}", error_json(key, code, &details));
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
            eprintln!("error: no flag `{key}` in {source}");
        }
        return ExitCode::FAILURE;
    }
    let eval = evaluate(&snapshot, key, &request.context(), now_ms);
    if args.json {
        let mut answer = ofrep_json(key, &eval);
        // As the edge says it: what this flag reads that was sent unsigned and ignored.
        let ignored = shared_eval::unsigned_ignored(&snapshot, key, &request.context());
        if !ignored.is_empty() {
            answer["metadata"]["unsignedIgnored"] = json!(ignored);
        }
        // As the edge's single-flag answer: which version and side answered (`--deployed`).
        if let (Some(served), Some(metadata)) = (&served, answer["metadata"].as_object_mut()) {
            metadata.insert("flagsVersion".into(), json!(served.version));
            metadata.insert("flagsTrack".into(), json!(served.track));
        }
        println!("{answer}");
    } else {
        match &served {
            None => println!("{}", one_line(key, &eval)),
            Some(served) => println!("{} [{served}]", one_line(key, &eval)),
        }
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
