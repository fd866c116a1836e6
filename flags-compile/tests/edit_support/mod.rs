//! Helpers shared by the editor's tests (`edit.rs`, `edit_props.rs`).
#![allow(dead_code)]

use std::path::Path;

use flags_compile::edit::rewrite;
use flags_compile::yaml;
use serde_json::Value as Json;

pub fn example(sub_and_name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/flags")
            .join(sub_and_name),
    )
    .unwrap()
}

pub fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for sub in ["flags", "segments"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/flags")
            .join(sub);
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out
}

/// JSON equality with numbers compared by value.
pub fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

pub fn json_of(text: &str) -> Json {
    yaml::parse(text).unwrap().to_json()
}

/// Rewrites and checks the result means `wanted`.
pub fn edit(text: &str, wanted: &Json) -> String {
    let out = rewrite(text, wanted).unwrap_or_else(|e| panic!("{e}\n--- text:\n{text}"));
    assert!(same(&json_of(&out), wanted), "--- out:\n{out}");
    out
}

/// The 0-based numbers of the lines that differ (both texts must have as many lines).
pub fn changed_lines(a: &str, b: &str) -> Vec<usize> {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a.len(), b.len(), "line count changed:\n{}", b.join("\n"));
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

/// Whether `small`'s lines appear in `big` in order (every untouched line survived).
pub fn is_subsequence(small: &str, big: &str) -> bool {
    let mut big = big.lines();
    small.lines().all(|l| big.any(|m| m == l))
}

/// Strings that must read back as themselves wherever they are written.
pub const HOSTILE: &[&str] = &[
    "on",
    "off",
    "null",
    "Null",
    "true",
    "True",
    "1.0",
    "1",
    "0x1F",
    "1e3",
    ".inf",
    ":",
    "- x",
    "#x",
    " leading space",
    "trailing space ",
    "a: b",
    "a #b",
    "",
    "~",
    "@x",
    "`x",
    "%x",
    "!x",
    "*x",
    "&x",
    "|",
    ">",
    "?",
    "-",
    "--- x",
    "...",
    "{a}",
    "[a]",
    "a, b",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "two\nlines",
    "tab\there",
    "\r",
    "é ü 日本",
    "\u{85}",
    "\u{2028}",
    "\u{feff}x",
    "\u{1}",
    "x:",
    "k: v\nk2: v2",
    "'",
    "\"",
    "https://x.example/a?b=c#d",
];
