//! Prints the realistic flag set's blob size, and what each part of the format costs.
//!
//! Run with `cargo run -p benches --release --bin blob-size -- [N] [--print]` (default 1,000
//! flags; `--print` writes the blob itself as pretty JSON instead).
//! "Marginal" is how many gzipped bytes the blob would lose without that part: the honest
//! measure of a field's cost once gzip has squeezed out repetition.

use benches::fixtures::{blob_json, gzip, realistic_blob};
use serde_json::Value;

fn gz(value: &Value) -> usize {
    gzip(&serde_json::to_vec(value).unwrap_or_default()).len()
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let blob = realistic_blob(n);
    let json = blob_json(&blob);
    if std::env::args().any(|a| a == "--print") {
        let Ok(value) = serde_json::to_value(&blob) else {
            return;
        };
        println!("{value:#}");
        return;
    }
    let total = gzip(&json).len();
    println!(
        "{n} realistic flags: {} bytes JSON, {total} bytes gzipped (budget 25 KB)",
        json.len()
    );

    let Ok(whole) = serde_json::to_value(&blob) else {
        return;
    };
    println!("\nmarginal gzipped bytes, body tables:");
    for table in ["attrs", "lists", "segments", "flags", "eval_order"] {
        let mut without = whole.clone();
        if let Some(body) = without.get_mut("body").and_then(Value::as_object_mut) {
            body.remove(table);
        }
        println!("  {table:<16} {:>6}", total.saturating_sub(gz(&without)));
    }

    println!("\nmarginal gzipped bytes, per flag field (summed over all flags):");
    let mut fields: Vec<String> = Vec::new();
    if let Some(flags) = whole.pointer("/body/flags").and_then(Value::as_array) {
        for flag in flags {
            for key in flag.as_object().into_iter().flat_map(|o| o.keys()) {
                if !fields.contains(key) {
                    fields.push(key.clone());
                }
            }
        }
    }
    for field in &fields {
        let mut without = whole.clone();
        if let Some(flags) = without
            .pointer_mut("/body/flags")
            .and_then(Value::as_array_mut)
        {
            for flag in flags {
                if let Some(object) = flag.as_object_mut() {
                    object.remove(field);
                }
            }
        }
        println!("  {field:<16} {:>6}", total.saturating_sub(gz(&without)));
    }
}
