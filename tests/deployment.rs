//! A deployment as the end-to-end tests run it: a SeaweedFS bucket as the store, the worker in
//! workerd reading it over S3 and accepting purges, and the publisher CLI pointed at both.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::worker::Worker;
use crate::{SeaweedFs, publisher_bin, repo_root};

/// What differs between the tests' deployments.
pub struct Spec<'a> {
    /// Names the bucket and store prefix, so tests sharing one SeaweedFS never meet.
    pub label: &'a str,
    /// The environment the worker serves and the publisher writes.
    pub environment: &'a str,
    /// The worker's `IDENTITY_SECRET` (tests sign identity tokens with it).
    pub identity_secret: &'a str,
    /// The worker's `PURGE_TOKEN` (the publisher purges with it).
    pub purge_token: &'a str,
    /// More worker bindings (e.g. `REVALIDATE_MS`).
    pub bindings: &'a [(&'a str, &'a str)],
    /// Static assets the worker serves beside the flags (the dashboard).
    pub assets: Option<&'a Path>,
}

/// A running deployment; the worker stops on drop.
pub struct Deployment {
    pub worker: Worker,
    /// The publisher's `--store` (`s3://bucket/prefix`).
    pub store: String,
    /// The publisher's environment variables: S3 credentials and the worker as purge target.
    pub env: Vec<(&'static str, String)>,
    environment: String,
    _s3: Arc<SeaweedFs>,
}

/// The `--store` of the deployment labelled `label` (known before it starts, for services that
/// must be started first).
pub fn store_url(s3: &SeaweedFs, label: &str) -> String {
    format!("{}/{label}", s3.bucket(&bucket_name(label)))
}

fn bucket_name(label: &str) -> String {
    format!("{label}-{}", std::process::id())
}

impl Deployment {
    pub fn start(spec: &Spec<'_>) -> Deployment {
        let s3 = SeaweedFs::shared();
        let bucket = bucket_name(spec.label);
        let prefix = format!("{}/", spec.label);
        let store = store_url(&s3, spec.label);
        let mut bindings = vec![
            ("FLAGS_ENV", spec.environment),
            ("ORIGIN_KIND", "s3"),
            ("S3_ENDPOINT", s3.endpoint.as_str()),
            ("S3_BUCKET", bucket.as_str()),
            ("S3_REGION", "us-east-1"),
            ("ORIGIN_PREFIX", prefix.as_str()),
            ("S3_ACCESS_KEY_ID", s3.access_key.as_str()),
            ("S3_SECRET_ACCESS_KEY", s3.secret_key.as_str()),
            ("IDENTITY_SECRET", spec.identity_secret),
            ("PURGE_TOKEN", spec.purge_token),
        ];
        bindings.extend_from_slice(spec.bindings);
        let worker = Worker::start_with(&bindings, spec.assets);
        let mut env = s3.aws_env();
        env.push(("FLAGS_PURGE", worker.url.clone()));
        env.push(("FLAGS_PURGE_TOKEN", spec.purge_token.to_owned()));
        Deployment {
            worker,
            store,
            env,
            environment: spec.environment.to_owned(),
            _s3: s3,
        }
    }

    /// `publisher <args> --env ENV --store ...`, run from the repository root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(publisher_bin());
        command
            .args(args)
            .args(["--env", &self.environment, "--store", &self.store])
            .envs(self.env.iter().cloned())
            .current_dir(repo_root());
        command
    }

    /// Runs the publisher and panics unless it exits 0; returns the moment it exited (what
    /// propagation is measured from).
    pub fn publisher(&self, args: &[&str]) -> Instant {
        let output = self.command(args).output().expect("run publisher");
        assert!(
            output.status.success(),
            "publisher {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Instant::now()
    }

    /// The publisher's `--json` answer.
    pub fn json(&self, args: &[&str]) -> Value {
        let output = self
            .command(args)
            .arg("--json")
            .output()
            .expect("run publisher");
        serde_json::from_slice(&output.stdout).expect("--json output")
    }

    /// The shell form of a publisher command (for scripts a test hands a command line to).
    pub fn shell(&self, args: &str) -> String {
        format!(
            "{} {args} --env {} --store {}",
            publisher_bin().display(),
            self.environment,
            self.store
        )
    }
}
