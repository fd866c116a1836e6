//! "Did you mean ...?": the closest of a few known names to one a user typed (an operator, an
//! environment, a flag key), for error messages. Typos are caught by edit distance (`prd`,
//! `beta-baner`), long forms and abbreviations by prefix or subsequence (`production` for
//! `prod`, `stg` for `staging`).

/// Levenshtein distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The candidate `word` most likely meant, if any is close enough: within an edit distance of
/// 2 (or a third of the longer name), or one a prefix of the other (3 characters at least), or
/// one's characters in order within the other, starting alike (`stg`, `staging`). The nearest
/// by edit distance wins; a candidate equal to `word` is not a suggestion.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|c| *c != word && related(word, c))
        .min_by_key(|c| edit_distance(word, c))
}

/// ` (did you mean `x`?)` when [`closest`] finds one, else nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn related(a: &str, b: &str) -> bool {
    let (short, long) = if a.chars().count() <= b.chars().count() {
        (a, b)
    } else {
        (b, a)
    };
    let (short_len, long_len) = (short.chars().count(), long.chars().count());
    if short_len == 0 {
        return false;
    }
    edit_distance(a, b) <= 2.max(long_len / 3)
        || (short_len >= 3 && long.starts_with(short))
        || (short_len >= 2 && short.chars().next() == long.chars().next() && in_order(short, long))
}

/// Whether `short`'s characters appear in `long` in the same order.
fn in_order(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_long_forms_and_abbreviations() {
        let envs = ["dev", "prod", "staging"];
        for (typed, meant) in [
            ("prd", Some("prod")),
            ("production", Some("prod")),
            ("Prod", Some("prod")),
            ("stg", Some("staging")),
            ("stagin", Some("staging")),
            ("development", Some("dev")),
            ("qa", None),
            ("eu-west", None),
            ("prod", None),
        ] {
            assert_eq!(closest(typed, envs), meant, "{typed}");
        }
        let flags = ["beta-banner", "new-chart", "new-dashboard-layout"];
        assert_eq!(closest("beta-baner", flags), Some("beta-banner"));
        assert_eq!(closest("new-chrat", flags), Some("new-chart"));
        assert_eq!(closest("checkout", flags), None);
        assert_eq!(did_you_mean("prd", envs), " (did you mean `prod`?)");
        assert_eq!(did_you_mean("qa", envs), "");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("equal", "equals"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
