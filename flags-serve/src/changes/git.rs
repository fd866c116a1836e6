//! The flags repository, through the `git` command: the service's clone of the remote, read and
//! written with plumbing only (`ls-tree`, `cat-file`, `hash-object`, a private index,
//! `commit-tree`, `merge-tree`, `push`). Nothing here touches the clone's work tree or its
//! index, so edits, merges and the webhook's checkout never step on each other, and two
//! requests can build commits at once.
//!
//! Every argument that comes from a request is either a full object name checked by
//! [`is_object_name`], a path the caller built from a checked flag key, or passed after `--`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::webhook::is_object_name;

/// The clone, its remote and the branch changes merge into.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The clone's top directory (`git rev-parse --show-toplevel` of the flags directory).
    pub root: PathBuf,
    /// The flags directory inside the repository (`""` when it is the top), `/`-separated,
    /// with a trailing `/` when not empty.
    pub prefix: String,
    /// The remote's name in the clone (`origin`).
    pub remote: String,
    /// The branch changes merge into (`main`).
    pub branch: String,
    /// Who commits (`name <email>`): the service itself; authors are the callers.
    pub committer: Person,
    /// The branch's remote-tracking commit as last resolved, with the generation it was
    /// resolved in: every read of the list needs it, and only a fetch or a push moves it.
    main: Arc<Mutex<(u64, Option<String>)>>,
}

/// A Git identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

impl std::fmt::Display for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// A file of a tree: its path (relative to the repository) and blob id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path from the repository's top.
    pub path: String,
    /// Blob id.
    pub blob: String,
}

/// One commit as the API shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full id.
    pub id: String,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Author date, RFC 3339.
    pub date: String,
    /// First line of the message.
    pub subject: String,
}

/// What rebasing a change onto the branch gave.
#[derive(Debug)]
pub enum Rebased {
    /// The replayed commits' last one.
    Applied(String),
    /// These files conflict.
    Conflicted(Vec<String>),
}

/// A file written by a commit: its new content, or `None` to delete it.
pub type Write = (String, Option<Vec<u8>>);

impl Repo {
    /// The repository holding `flags_dir`.
    pub async fn discover(
        flags_dir: &Path,
        remote: &str,
        branch: &str,
        committer: Person,
    ) -> Result<Repo, String> {
        let root = run(flags_dir, &["rev-parse", "--show-toplevel"], None)
            .await
            .map_err(|e| format!("{}: not in a Git clone: {e}", flags_dir.display()))?;
        let prefix = run(flags_dir, &["rev-parse", "--show-prefix"], None)
            .await
            .map_err(|e| e.to_string())?;
        let repo = Repo {
            root: PathBuf::from(String::from_utf8_lossy(&root).trim()),
            prefix: String::from_utf8_lossy(&prefix).trim().to_owned(),
            remote: remote.to_owned(),
            branch: branch.to_owned(),
            committer,
            main: Arc::default(),
        };
        if !valid_ref_part(&repo.branch) || !valid_ref_part(&repo.remote) {
            return Err(format!(
                "git: invalid remote {:?} or branch {:?}",
                repo.remote, repo.branch
            ));
        }
        Ok(repo)
    }

    async fn git(&self, args: &[&str]) -> Result<Vec<u8>, ApiError> {
        run(&self.root, args, None).await
    }

    async fn git_text(&self, args: &[&str]) -> Result<String, ApiError> {
        Ok(String::from_utf8_lossy(&self.git(args).await?)
            .trim()
            .to_owned())
    }

    /// The remote-tracking ref of `branch`.
    pub fn tracking(&self, branch: &str) -> String {
        format!("refs/remotes/{}/{branch}", self.remote)
    }

    /// Fetches the branch and every change branch from the remote (pruning deleted ones).
    pub async fn fetch(&self) -> Result<(), ApiError> {
        let main = format!(
            "+refs/heads/{0}:refs/remotes/{1}/{0}",
            self.branch, self.remote
        );
        let changes = format!(
            "+refs/heads/changes/*:refs/remotes/{}/changes/*",
            self.remote
        );
        let fetched = self
            .git(&[
                "fetch",
                "--quiet",
                "--prune",
                "--",
                &self.remote,
                &main,
                &changes,
            ])
            .await;
        self.forget_main();
        fetched.map(drop)
    }

    /// Drops the remembered branch commit: after anything that may move the remote-tracking
    /// ref (a fetch, a push, the webhook's own fetch).
    pub fn forget_main(&self) {
        let mut main = self.main.lock().unwrap_or_else(|e| e.into_inner());
        *main = (main.0 + 1, None);
    }

    /// The commit a ref names, `None` if there is no such ref.
    pub async fn resolve(&self, reference: &str) -> Result<Option<String>, ApiError> {
        let verified = format!("{reference}^{{commit}}");
        match run(
            &self.root,
            &["rev-parse", "--verify", "--quiet", &verified],
            None,
        )
        .await
        {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_owned())),
            Err(ApiError::Upstream(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The branch's commit as last fetched.
    pub async fn main_commit(&self) -> Result<String, ApiError> {
        let generation = {
            let main = self.main.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(commit) = &main.1 {
                return Ok(commit.clone());
            }
            main.0
        };
        let commit = self
            .resolve(&self.tracking(&self.branch))
            .await?
            .ok_or_else(|| {
                ApiError::Upstream(format!(
                    "the remote {} has no branch {} (fetch it first)",
                    self.remote, self.branch
                ))
            })?;
        // Remembered only if nothing moved the ref while it was being read.
        let mut main = self.main.lock().unwrap_or_else(|e| e.into_inner());
        if main.0 == generation {
            main.1 = Some(commit.clone());
        }
        Ok(commit)
    }

    /// Every file under the flags directory at `commit`, by path.
    pub async fn files(&self, commit: &str) -> Result<Vec<TreeFile>, ApiError> {
        check_object(commit)?;
        let mut args = vec!["ls-tree", "-r", "-z", "--full-tree", commit];
        if !self.prefix.is_empty() {
            args.extend(["--", self.prefix.as_str()]);
        }
        let out = self.git(&args).await?;
        let mut files = Vec::new();
        for entry in out.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            // `<mode> SP <type> SP <object> TAB <path>`
            let Some((meta, path)) = entry.split_once('\t') else {
                continue;
            };
            let mut meta = meta.split(' ');
            let (Some(_mode), Some(kind), Some(blob)) = (meta.next(), meta.next(), meta.next())
            else {
                continue;
            };
            if kind == "blob" {
                files.push(TreeFile {
                    path: path.to_owned(),
                    blob: blob.to_owned(),
                });
            }
        }
        Ok(files)
    }

    /// The contents of these blobs, in order (one `cat-file --batch` for all).
    pub async fn blobs(&self, ids: &[&str]) -> Result<Vec<Vec<u8>>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = Vec::new();
        for id in ids {
            check_object(id)?;
            input.extend_from_slice(id.as_bytes());
            input.push(b'\n');
        }
        let out = run(&self.root, &["cat-file", "--batch"], Some(input)).await?;
        let mut rest = &out[..];
        let mut blobs = Vec::with_capacity(ids.len());
        for id in ids {
            // `<oid> SP <type> SP <size> LF <contents> LF`
            let newline = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| ApiError::Internal(format!("cat-file: no header for {id}")))?;
            let header = String::from_utf8_lossy(&rest[..newline]).into_owned();
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ApiError::Internal(format!("cat-file: {header}")))?;
            let start = newline + 1;
            let end = start + size;
            if rest.len() < end {
                return Err(ApiError::Internal(format!("cat-file: short read of {id}")));
            }
            blobs.push(rest[start..end].to_vec());
            rest = &rest[(end + 1).min(rest.len())..];
        }
        Ok(blobs)
    }

    /// Every file of the flags directory as of `commit` with `writes` applied: its path from
    /// the flags directory and its bytes, in path order.
    pub async fn tree(
        &self,
        commit: &str,
        writes: &[Write],
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let files = self.files(commit).await?;
        let ids: Vec<&str> = files.iter().map(|f| f.blob.as_str()).collect();
        let contents = self.blobs(&ids).await?;
        let mut tree: BTreeMap<String, Vec<u8>> = files
            .into_iter()
            .zip(contents)
            .map(|(f, c)| (f.path, c))
            .collect();
        for (path, content) in writes {
            match content {
                Some(bytes) => tree.insert(path.clone(), bytes.clone()),
                None => tree.remove(path),
            };
        }
        Ok(tree
            .into_iter()
            .map(|(path, bytes)| {
                let relative = path.strip_prefix(&self.prefix).unwrap_or(&path).to_owned();
                (relative, bytes)
            })
            .collect())
    }

    /// A commit on `parent` with `writes` applied, by `author`, with `message`.
    pub async fn commit(
        &self,
        parent: &str,
        writes: &[Write],
        author: &Person,
        message: &str,
    ) -> Result<String, ApiError> {
        check_object(parent)?;
        // A private index in a fresh directory (git creates the file): concurrent commits
        // never share one, and the clone's own index is never touched.
        let scratch =
            tempfile::tempdir().map_err(|e| ApiError::Internal(format!("temporary index: {e}")))?;
        let mut env = vec![(
            "GIT_INDEX_FILE".to_owned(),
            scratch.path().join("index").display().to_string(),
        )];
        env.extend(identity_env(author, &self.committer, None));
        run_env(&self.root, &["read-tree", parent], None, env.clone()).await?;
        for (path, content) in writes {
            match content {
                Some(bytes) => {
                    let blob = run(
                        &self.root,
                        &["hash-object", "-w", "--stdin"],
                        Some(bytes.clone()),
                    )
                    .await?;
                    let blob = String::from_utf8_lossy(&blob).trim().to_owned();
                    let info = format!("100644,{blob},{path}");
                    run_env(
                        &self.root,
                        &["update-index", "--add", "--cacheinfo", &info],
                        None,
                        env.clone(),
                    )
                    .await?;
                }
                None => {
                    run_env(
                        &self.root,
                        &["update-index", "--force-remove", "--", path],
                        None,
                        env.clone(),
                    )
                    .await?;
                }
            }
        }
        let tree = run_env(&self.root, &["write-tree"], None, env).await?;
        let tree = String::from_utf8_lossy(&tree).trim().to_owned();
        let commit = run_env(
            &self.root,
            &["commit-tree", &tree, "-p", parent, "-F", "-"],
            Some(message.as_bytes().to_vec()),
            identity_env(author, &self.committer, None),
        )
        .await?;
        Ok(String::from_utf8_lossy(&commit).trim().to_owned())
    }

    /// The blob id of `path` at `commit`, `None` if it has no such file.
    pub async fn blob_id(&self, commit: &str, path: &str) -> Result<Option<String>, ApiError> {
        check_object(commit)?;
        self.resolve_blob(&format!("{commit}:{path}")).await
    }

    async fn resolve_blob(&self, spec: &str) -> Result<Option<String>, ApiError> {
        match run(
            &self.root,
            &["rev-parse", "--verify", "--quiet", spec],
            None,
        )
        .await
        {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_owned())),
            Err(ApiError::Upstream(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pushes `commit` to the remote's `branch`. `expect`: the remote must still hold that
    /// commit there (`Some("")`: must not have the branch); `None`: a plain push, which the
    /// remote refuses unless it fast-forwards. `Ok(false)` when the remote refused.
    pub async fn push(
        &self,
        commit: &str,
        branch: &str,
        expect: Option<&str>,
    ) -> Result<bool, ApiError> {
        check_object(commit)?;
        let refspec = format!("{commit}:refs/heads/{branch}");
        let lease;
        let mut args = vec!["push", "--quiet", "--porcelain"];
        if let Some(old) = expect {
            lease = format!("--force-with-lease=refs/heads/{branch}:{old}");
            args.push(&lease);
        }
        args.extend(["--", &self.remote, &refspec]);
        let pushed = self.git(&args).await;
        self.forget_main();
        match pushed {
            Ok(_) => Ok(true),
            Err(ApiError::Upstream(message))
                if message.contains("rejected")
                    || message.contains("stale info")
                    || message.contains("non-fast-forward")
                    || message.contains("fetch first") =>
            {
                tracing::info!(branch, %message, "push refused by the remote");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a branch of the remote (a closed or merged change's), ignoring a missing one.
    pub async fn delete_branch(&self, branch: &str) -> Result<(), ApiError> {
        let refspec = format!(":refs/heads/{branch}");
        match self
            .git(&["push", "--quiet", "--", &self.remote, &refspec])
            .await
        {
            Ok(_) => Ok(()),
            Err(ApiError::Upstream(m)) if m.contains("remote ref does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether `ancestor` is `commit` or one of its ancestors.
    pub async fn is_ancestor(&self, ancestor: &str, commit: &str) -> Result<bool, ApiError> {
        check_object(ancestor)?;
        check_object(commit)?;
        match run_status(
            &self.root,
            &["merge-base", "--is-ancestor", ancestor, commit],
        )
        .await?
        {
            (0, _) => Ok(true),
            (1, _) => Ok(false),
            (code, out) => Err(ApiError::Upstream(format!(
                "git merge-base failed ({code}): {out}"
            ))),
        }
    }

    /// The commits of `base..head`, oldest first.
    pub async fn commits(&self, base: &str, head: &str) -> Result<Vec<CommitInfo>, ApiError> {
        check_object(base)?;
        check_object(head)?;
        let range = format!("{base}..{head}");
        self.log(&["log", "--reverse", LOG_FORMAT, &range]).await
    }

    /// The last `limit` commits of `head` that touched `path`, newest first.
    pub async fn file_commits(
        &self,
        head: &str,
        path: &str,
        limit: usize,
    ) -> Result<Vec<CommitInfo>, ApiError> {
        check_object(head)?;
        let limit = format!("-n{limit}");
        self.log(&["log", &limit, LOG_FORMAT, head, "--", path])
            .await
    }

    async fn log(&self, args: &[&str]) -> Result<Vec<CommitInfo>, ApiError> {
        let out = self.git_text(args).await?;
        Ok(out
            .split('\u{1e}')
            .filter_map(|record| {
                let mut fields = record.trim_matches('\n').split('\u{1f}');
                Some(CommitInfo {
                    id: fields.next().filter(|s| !s.is_empty())?.to_owned(),
                    author: fields.next()?.to_owned(),
                    email: fields.next()?.to_owned(),
                    date: fields.next()?.to_owned(),
                    subject: fields.next()?.to_owned(),
                })
            })
            .collect())
    }

    /// The unified diff of the flags directory from `base` to `head`.
    pub async fn diff(&self, base: &str, head: &str) -> Result<String, ApiError> {
        check_object(base)?;
        check_object(head)?;
        let mut args = vec!["diff", "--no-color", "--no-ext-diff", base, head];
        if !self.prefix.is_empty() {
            args.extend(["--", self.prefix.as_str()]);
        }
        Ok(String::from_utf8_lossy(&self.git(&args).await?).into_owned())
    }

    /// Replays the commits of `base..head` onto `onto` (a rebase made of `merge-tree`s, each
    /// commit keeping its author and message), or names the files that conflict.
    pub async fn rebase(&self, base: &str, head: &str, onto: &str) -> Result<Rebased, ApiError> {
        check_object(onto)?;
        let commits = self.commits(base, head).await?;
        let mut tip = onto.to_owned();
        for commit in commits {
            let parent = format!("{}^", commit.id);
            let merge_base = format!("--merge-base={parent}");
            let merged = run_status(
                &self.root,
                &[
                    "merge-tree",
                    "--write-tree",
                    "--name-only",
                    "--no-messages",
                    &merge_base,
                    &tip,
                    &commit.id,
                ],
            )
            .await?;
            let mut lines = merged.1.lines();
            let tree = lines.next().unwrap_or_default().trim().to_owned();
            match merged.0 {
                0 => {}
                1 => {
                    let mut files: Vec<String> = lines
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect();
                    files.dedup();
                    return Ok(Rebased::Conflicted(files));
                }
                code => {
                    return Err(ApiError::Upstream(format!(
                        "git merge-tree failed ({code}): {}",
                        merged.1
                    )));
                }
            }
            let message = self.git(&["log", "-1", "--format=%B", &commit.id]).await?;
            let author = Person {
                name: commit.author.clone(),
                email: commit.email.clone(),
            };
            let new = run_env(
                &self.root,
                &["commit-tree", &tree, "-p", &tip, "-F", "-"],
                Some(message),
                identity_env(&author, &self.committer, Some(&commit.date)),
            )
            .await?;
            tip = String::from_utf8_lossy(&new).trim().to_owned();
        }
        Ok(Rebased::Applied(tip))
    }

    /// Checks `commit` out in the clone's work tree (detached), as the webhook does, so the
    /// routes that compile the checkout see what was merged.
    pub async fn checkout(&self, commit: &str) -> Result<(), ApiError> {
        check_object(commit)?;
        self.git(&["checkout", "--quiet", "--detach", commit])
            .await
            .map(drop)
    }
}

const LOG_FORMAT: &str = "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1e";

fn identity_env(author: &Person, committer: &Person, date: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("GIT_AUTHOR_NAME".to_owned(), author.name.clone()),
        ("GIT_AUTHOR_EMAIL".to_owned(), author.email.clone()),
        ("GIT_COMMITTER_NAME".to_owned(), committer.name.clone()),
        ("GIT_COMMITTER_EMAIL".to_owned(), committer.email.clone()),
    ];
    if let Some(date) = date {
        env.push(("GIT_AUTHOR_DATE".to_owned(), date.to_owned()));
    }
    env
}

fn check_object(id: &str) -> Result<(), ApiError> {
    if is_object_name(id) {
        Ok(())
    } else {
        Err(ApiError::Internal(format!("not an object id: {id:?}")))
    }
}

/// A remote or branch name safe to put in a refspec.
fn valid_ref_part(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.', '/'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// Runs `git -C dir args` (never prompting), with `input` on stdin: its stdout, or
/// [`ApiError::Upstream`] naming the command and git's own message.
pub(crate) async fn run(
    dir: &Path,
    args: &[&str],
    input: Option<Vec<u8>>,
) -> Result<Vec<u8>, ApiError> {
    run_env(dir, args, input, Vec::new()).await
}

async fn run_env(
    dir: &Path,
    args: &[&str],
    input: Option<Vec<u8>>,
    env: Vec<(String, String)>,
) -> Result<Vec<u8>, ApiError> {
    let output = spawn(dir, args, input, env).await?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(ApiError::Upstream(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Runs git and hands back its exit code and output, for commands whose code is an answer.
async fn run_status(dir: &Path, args: &[&str]) -> Result<(i32, String), ApiError> {
    let output = spawn(dir, args, None, Vec::new()).await?;
    let code = output.status.code().unwrap_or(-1);
    let text = if code > 1 {
        String::from_utf8_lossy(&output.stderr).into_owned()
    } else {
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    Ok((code, text))
}

async fn spawn(
    dir: &Path,
    args: &[&str],
    input: Option<Vec<u8>>,
    env: Vec<(String, String)>,
) -> Result<std::process::Output, ApiError> {
    let mut command = tokio::process::Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(env)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| ApiError::Internal(format!("cannot run git: {e}")))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Written in its own task: git may fill its stdout pipe before reading all of stdin.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    child
        .wait_with_output()
        .await
        .map_err(|e| ApiError::Internal(format!("git: {e}")))
}
