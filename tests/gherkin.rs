//! A small Gherkin reader: enough of the language for the flagd-testbed features.
//!
//! Supports `Feature:`, `Background:`, `Scenario:`, `Scenario Outline:` / `Scenario Template:`,
//! `Examples:` / `Scenarios:` blocks (each with its own tags), tags on features, scenarios and
//! example blocks, steps (`Given`/`When`/`Then`/`And`/`But`/`*`) with an optional data table,
//! `#` comments, and table cells with Gherkin's escapes (`\|`, `\\`, `\n`; any other backslash
//! is kept, so a cell holding `{\"a\": 1}` reaches the step as written). Outlines are expanded
//! into one [`Case`] per example row with `<column>` placeholders substituted.
//! Doc strings (`"""`) and `Rule:` are not used by the testbed and are rejected.

/// One runnable scenario (an outline expands into one per example row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The scenario's name, with the example row appended for outlines (`name [a=1, b=2]`).
    pub name: String,
    /// Tags of the feature, the scenario and (for outlines) the example block.
    pub tags: Vec<String>,
    /// 1-based line of the scenario (or of the example row).
    pub line: usize,
    /// Background steps first, then the scenario's.
    pub steps: Vec<Step>,
}

/// One step, placeholders already substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `Given`, `When`, `Then`, `And`, `But` or `*`.
    pub keyword: String,
    /// The text after the keyword.
    pub text: String,
    /// A data table under the step, header row included.
    pub table: Vec<Vec<String>>,
}

/// A parsed feature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The text after `Feature:`.
    pub name: String,
    /// Every scenario, outlines expanded.
    pub cases: Vec<Case>,
}

#[derive(Debug, Default)]
struct Scenario {
    name: String,
    tags: Vec<String>,
    line: usize,
    outline: bool,
    steps: Vec<Step>,
    examples: Vec<Examples>,
}

#[derive(Debug, Default)]
struct Examples {
    tags: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

enum Section {
    None,
    Background,
    Scenario,
    Examples,
}

const STEP_KEYWORDS: [&str; 6] = ["Given ", "When ", "Then ", "And ", "But ", "* "];

/// Parses a feature file; errors name the line.
pub fn parse(source: &str) -> Result<Feature, String> {
    let mut feature_name = None;
    let mut feature_tags: Vec<String> = Vec::new();
    let mut pending_tags: Vec<String> = Vec::new();
    let mut background: Vec<Step> = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut section = Section::None;

    for (index, raw) in source.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        let at = |what: &str| format!("line {line_no}: {what}");
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            pending_tags.extend(
                line.split_whitespace()
                    .take_while(|t| !t.starts_with('#'))
                    .map(str::to_string),
            );
            continue;
        }
        if let Some(name) = line.strip_prefix("Feature:") {
            feature_name = Some(name.trim().to_string());
            feature_tags = std::mem::take(&mut pending_tags);
            continue;
        }
        if line.starts_with("Background:") {
            section = Section::Background;
            continue;
        }
        let outline = ["Scenario Outline:", "Scenario Template:"]
            .iter()
            .find_map(|k| line.strip_prefix(k));
        let plain = ["Scenario:", "Example:"]
            .iter()
            .find_map(|k| line.strip_prefix(k));
        if let Some((name, outline)) = outline.map(|n| (n, true)).or(plain.map(|n| (n, false))) {
            scenarios.push(Scenario {
                name: name.trim().to_string(),
                tags: std::mem::take(&mut pending_tags),
                line: line_no,
                outline,
                ..Scenario::default()
            });
            section = Section::Scenario;
            continue;
        }
        if line.starts_with("Examples:") || line.starts_with("Scenarios:") {
            let scenario = scenarios
                .last_mut()
                .ok_or_else(|| at("`Examples:` outside a scenario"))?;
            scenario.examples.push(Examples {
                tags: std::mem::take(&mut pending_tags),
                rows: Vec::new(),
            });
            section = Section::Examples;
            continue;
        }
        if line.starts_with('|') {
            let cells = cells(line).map_err(|e| at(&e))?;
            match section {
                Section::Examples => {
                    let examples = scenarios.last_mut().and_then(|s| s.examples.last_mut());
                    examples
                        .ok_or_else(|| at("table outside a block"))?
                        .rows
                        .push((line_no, cells));
                }
                Section::Background => background
                    .last_mut()
                    .ok_or_else(|| at("table before any step"))?
                    .table
                    .push(cells),
                Section::Scenario => {
                    let step = scenarios.last_mut().and_then(|s| s.steps.last_mut());
                    step.ok_or_else(|| at("table before any step"))?
                        .table
                        .push(cells);
                }
                Section::None => return Err(at("table outside a scenario")),
            }
            continue;
        }
        if let Some(keyword) = STEP_KEYWORDS.iter().find(|k| line.starts_with(*k)) {
            let step = Step {
                keyword: keyword.trim().to_string(),
                text: line[keyword.len()..].trim().to_string(),
                table: Vec::new(),
            };
            match section {
                Section::Background => background.push(step),
                Section::Scenario => scenarios
                    .last_mut()
                    .ok_or_else(|| at("step outside a scenario"))?
                    .steps
                    .push(step),
                Section::Examples | Section::None => return Err(at("step outside a scenario")),
            }
            continue;
        }
        if matches!(section, Section::None)
            || line.starts_with("\"\"\"")
            || line.starts_with("Rule:")
        {
            if feature_name.is_some() && matches!(section, Section::None) {
                continue; // free-form description under `Feature:`
            }
            return Err(at(&format!("unsupported Gherkin: {line}")));
        }
        // A free-form description line under a scenario or examples header.
    }

    let name = feature_name.ok_or("no `Feature:` line")?;
    let mut cases = Vec::new();
    for scenario in scenarios {
        let mut tags = feature_tags.clone();
        tags.extend(scenario.tags.iter().cloned());
        let with_background =
            |steps: Vec<Step>| background.iter().cloned().chain(steps).collect::<Vec<_>>();
        if !scenario.outline {
            cases.push(Case {
                name: scenario.name,
                tags,
                line: scenario.line,
                steps: with_background(scenario.steps),
            });
            continue;
        }
        for examples in &scenario.examples {
            let mut rows = examples.rows.iter();
            let Some((_, header)) = rows.next() else {
                continue;
            };
            for (line, row) in rows {
                if row.len() != header.len() {
                    return Err(format!(
                        "line {line}: {} cells, the header has {}",
                        row.len(),
                        header.len()
                    ));
                }
                let substitute = |text: &str| {
                    header.iter().zip(row).fold(text.to_string(), |t, (h, v)| {
                        t.replace(&format!("<{h}>"), v)
                    })
                };
                let steps = scenario
                    .steps
                    .iter()
                    .map(|s| Step {
                        keyword: s.keyword.clone(),
                        text: substitute(&s.text),
                        table: s
                            .table
                            .iter()
                            .map(|r| r.iter().map(|c| substitute(c)).collect())
                            .collect(),
                    })
                    .collect();
                let mut case_tags = tags.clone();
                case_tags.extend(examples.tags.iter().cloned());
                let described: Vec<String> = header
                    .iter()
                    .zip(row)
                    .map(|(h, v)| format!("{h}={v}"))
                    .collect();
                cases.push(Case {
                    name: format!("{} [{}]", scenario.name, described.join(", ")),
                    tags: case_tags,
                    line: *line,
                    steps: with_background(steps),
                });
            }
        }
    }
    Ok(Feature { name, cases })
}

/// Splits `| a | b\|c |` into trimmed, unescaped cells.
fn cells(line: &str) -> Result<Vec<String>, String> {
    let inner = line
        .strip_prefix('|')
        .ok_or("a table row starts with `|`")?;
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars();
    let mut closed = false;
    while let Some(c) = chars.next() {
        closed = false;
        match c {
            '\\' => match chars.next() {
                Some('|') => cell.push('|'),
                Some('\\') => cell.push('\\'),
                Some('n') => cell.push('\n'),
                Some(other) => {
                    cell.push('\\');
                    cell.push(other);
                }
                None => cell.push('\\'),
            },
            '|' => {
                cells.push(cell.trim().to_string());
                cell.clear();
                closed = true;
            }
            other => cell.push(other),
        }
    }
    if !closed {
        return Err("a table row ends with `|`".to_string());
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"@feature-tag
Feature: Sample
  Free text describing the feature.

  Background:
    Given an evaluator

  Scenario: Plain
    When something with a table
      | key | value |
      | a   | 1     |
    Then done

  Scenario Outline: Outline
    Given a "<type>" flag
    Then value is "<value>"

    @v1
    Examples: first
      | type | value              |
      | int  | 1                  |
      | obj  | {\"a\": \| 1}      |

    @v2 @other
    Examples:
      | type | value |
      | str  |       |
"#;

    #[test]
    fn parses_backgrounds_outlines_tags_and_tables() {
        let feature = parse(SAMPLE).unwrap();
        assert_eq!(feature.name, "Sample");
        let names: Vec<&str> = feature.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Plain",
                "Outline [type=int, value=1]",
                "Outline [type=obj, value={\\\"a\\\": | 1}]",
                "Outline [type=str, value=]"
            ]
        );
        let plain = &feature.cases[0];
        assert_eq!(plain.tags, ["@feature-tag"]);
        assert_eq!(plain.steps.len(), 3);
        assert_eq!(plain.steps[0].text, "an evaluator");
        assert_eq!(plain.steps[1].table, [["key", "value"], ["a", "1"]]);
        let obj = &feature.cases[2];
        assert_eq!(obj.tags, ["@feature-tag", "@v1"]);
        assert_eq!(obj.steps[2].text, r#"value is "{\"a\": | 1}""#);
        assert_eq!(obj.line, 22);
        assert_eq!(feature.cases[3].tags, ["@feature-tag", "@v2", "@other"]);
        assert_eq!(feature.cases[3].steps[1].text, r#"a "str" flag"#);
    }

    #[test]
    fn rejects_ragged_rows_and_steps_outside_scenarios() {
        let ragged =
            "Feature: F\n Scenario Outline: O\n  Given <a>\n  Examples:\n   | a |\n   | 1 | 2 |\n";
        assert!(parse(ragged).unwrap_err().contains("line 6"));
        assert!(parse("Given nothing\n").is_err());
        assert!(
            parse("Feature: F\n Scenario: S\n  Given x\n   | open\n")
                .unwrap_err()
                .contains("line 4")
        );
    }
}
