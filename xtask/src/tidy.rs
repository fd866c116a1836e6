//! Checks that are tests (rust-analyzer's `tidy.rs`): the rules of the house, run by a plain
//! `cargo test`.
//!
//! - **Crate walls.** `flags-compile` reaches no async runtime, HTTP, cloud SDK or web
//!   framework crate (the compiler cannot see the network because it cannot name it);
//!   `shared-eval` no platform crate; `edge-worker` no publisher-side crate. Read from
//!   `cargo tree`, so a rule also holds for what a dependency drags in.
//! - **File size.** No source file is longer than [`MAX_LINES`] lines outside its tests (a
//!   file past it is usually two modules).
//! - **Module docs.** Every source file opens with a `//!` doc saying what it is for.
//!
//! Each rule is a function over plain data ([`wall_violations`], [`long_files`],
//! [`undocumented`]) with a test of its own showing that it bites.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Longest a source file may be, not counting its `#[cfg(test)] mod tests` tail.
pub const MAX_LINES: usize = 800;

/// One dependency rule: `krate` must not depend, directly or not, on any crate whose name
/// starts with one of `forbidden`.
pub struct Wall {
    /// The package whose dependency tree is checked.
    pub krate: &'static str,
    /// Name prefixes it must not reach (`aws-` covers every AWS SDK crate).
    pub forbidden: &'static [&'static str],
    /// Why, for the failure message.
    pub why: &'static str,
}

/// The dependency rules of the workspace (ARCHITECTURE.md, "Invariants").
pub const WALLS: &[Wall] = &[
    Wall {
        krate: "flags-compile",
        forbidden: &[
            "tokio",
            "reqwest",
            "aws-",
            "axum",
            "hyper",
            "tower",
            "flags-store",
            "flags-serve",
        ],
        why: "the compiler does no network I/O and knows no store",
    },
    Wall {
        krate: "flags-store",
        forbidden: &["axum", "clap", "flags-serve", "publisher"],
        why: "the store floor serves no HTTP and parses no command line",
    },
    Wall {
        krate: "shared-eval",
        forbidden: &[
            "tokio",
            "reqwest",
            "worker",
            "wasm-bindgen",
            "web-sys",
            "js-sys",
        ],
        why: "the evaluator does no I/O and depends on no platform crate",
    },
    Wall {
        krate: "edge-worker",
        forbidden: &[
            "publisher",
            "flags-compile",
            "flags-store",
            "flags-serve",
            "aws-",
            "reqwest",
        ],
        why: "nothing at the edge depends on the publisher",
    },
    Wall {
        krate: "flags-sdk-core",
        forbidden: &[
            "tokio",
            "reqwest",
            "aws-",
            "hyper",
            "flags-compile",
            "flags-store",
            "flags-serve",
            "publisher",
        ],
        why: "the SDK core is sans I/O (every language shell brings its own) and knows no publisher",
    },
    Wall {
        krate: "flags-sdk",
        forbidden: &[
            "flags-compile",
            "flags-store",
            "flags-serve",
            "publisher",
            "edge-worker",
        ],
        why: "an SDK links the evaluator and its core, never the publisher's crates",
    },
];

/// The packages `krate` depends on (normal dependencies, transitively, every target), by name.
fn dependency_names(root: &Path, krate: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree", "--quiet", "-p", krate, "-e", "normal", "--prefix", "none",
        ])
        .args(["--target", "all", "--format", "{p}"])
        .current_dir(root)
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {krate} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1) // the crate itself
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Each dependency of `wall.krate` (from `names`) that breaks the wall, as a message.
pub fn wall_violations(wall: &Wall, names: &[String]) -> Vec<String> {
    let mut found: Vec<String> = names
        .iter()
        .filter(|name| wall.forbidden.iter().any(|f| name.starts_with(f)))
        .map(|name| format!("{} depends on {name}: {}", wall.krate, wall.why))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Every `.rs` file under the crates' `src/` directories (tests, benches and fixtures aside).
fn source_files(root: &Path) -> Vec<PathBuf> {
    let crates = [
        "shared-eval/src",
        "flags-compile/src",
        "flags-store/src",
        "flags-serve/src",
        "publisher/src",
        "edge-worker/src",
        "sdk/core/src",
        "sdk/rust/src",
        "xtask/src",
    ];
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = crates.iter().map(|c| root.join(c)).collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Lines of `text` before its test module (`#[cfg(test)]` at the start of a line).
pub fn lines_outside_tests(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

/// Files (path, lines) longer than [`MAX_LINES`] outside their tests.
pub fn long_files(files: &[(PathBuf, String)]) -> Vec<String> {
    files
        .iter()
        .map(|(path, text)| (path, lines_outside_tests(text)))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(path, lines)| {
            format!(
                "{}: {lines} lines outside tests (at most {MAX_LINES}: split it)",
                path.display()
            )
        })
        .collect()
}

/// Files that do not open with a `//!` module doc (attributes and blank lines may come first).
pub fn undocumented(files: &[(PathBuf, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, text)| {
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("#!["));
            !first.is_some_and(|l| l.starts_with("//!"))
        })
        .map(|(path, _)| format!("{}: no `//!` module doc", path.display()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_sources() -> Vec<(PathBuf, String)> {
        let root = crate::util::project_root();
        source_files(&root)
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("read source");
                (
                    path.strip_prefix(&root).unwrap_or(&path).to_path_buf(),
                    text,
                )
            })
            .collect()
    }

    #[test]
    fn crates_keep_their_walls() {
        let root = crate::util::project_root();
        let mut broken = Vec::new();
        for wall in WALLS {
            broken.extend(wall_violations(wall, &dependency_names(&root, wall.krate)));
        }
        assert!(
            broken.is_empty(),
            "dependency rules broken:\n{}",
            broken.join("\n")
        );
    }

    #[test]
    fn a_wall_bites() {
        // What `cargo tree -p flags-compile` would list had someone added the S3 client.
        let names: Vec<String> = ["serde", "aws-sdk-s3", "tokio"].map(String::from).to_vec();
        let found = wall_violations(&WALLS[0], &names);
        assert_eq!(
            found,
            [
                "flags-compile depends on aws-sdk-s3: the compiler does no network I/O and knows no store",
                "flags-compile depends on tokio: the compiler does no network I/O and knows no store",
            ]
        );
    }

    #[test]
    fn no_source_file_is_too_long() {
        let long = long_files(&read_sources());
        assert!(long.is_empty(), "{}", long.join("\n"));
    }

    #[test]
    fn the_length_rule_bites_and_skips_tests() {
        let long_body = "fn f() {}\n".repeat(MAX_LINES + 1);
        let tests_only = format!(
            "{}#[cfg(test)]\n{}",
            "//! doc\n",
            "fn t() {}\n".repeat(2000)
        );
        let files = vec![
            (PathBuf::from("long.rs"), long_body),
            (PathBuf::from("tested.rs"), tests_only),
        ];
        assert_eq!(
            long_files(&files),
            ["long.rs: 801 lines outside tests (at most 800: split it)"]
        );
    }

    #[test]
    fn every_module_has_a_doc() {
        let missing = undocumented(&read_sources());
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn the_doc_rule_bites() {
        let files = vec![
            (
                PathBuf::from("a.rs"),
                "#![no_std]\n\n//! Doc.\nfn a() {}\n".to_owned(),
            ),
            (
                PathBuf::from("b.rs"),
                "// not a doc\nfn b() {}\n".to_owned(),
            ),
        ];
        assert_eq!(undocumented(&files), ["b.rs: no `//!` module doc"]);
    }
}
