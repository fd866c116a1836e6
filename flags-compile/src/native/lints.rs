//! Warnings that do not stop a build: expired or overdue flags, rules that can never match.

use super::*;

impl Compiler {
    pub(super) fn date_lints(&mut self, at: &At<'_>, def: &FlagDef<'_>, today: NaiveDate) {
        if let Some((date, line)) = def.expires
            && date < today
        {
            self.warning(
                at,
                line,
                format!("flag expired on {date}: remove it (and its uses), or move `expires`"),
            );
        }
        if let Some((date, line)) = def.review_by
            && date < today
        {
            self.warning(
                at,
                line,
                format!(
                    "past its owner's review date ({date}): review the flag and move `review-by`"
                ),
            );
        }
    }

    pub(super) fn unreachable_rules(&mut self, at: &At<'_>, rules: &[(Rule, usize)]) {
        let always = Condition::All(Vec::new());
        let mut catch_all: Option<&str> = None;
        for (i, (rule, line)) in rules.iter().enumerate() {
            let rat = At {
                rule: Some(rule.id.clone()),
                ..at.clone()
            };
            if let Some(earlier) = catch_all {
                self.warning(
                    &rat,
                    *line,
                    format!("unreachable rule: rule {earlier} above matches every context"),
                );
                continue;
            }
            if let Some((earlier, _)) = rules[..i]
                .iter()
                .find(|(r, _)| r.condition == rule.condition)
            {
                self.warning(
                    &rat,
                    *line,
                    format!("unreachable rule: same condition as rule {}", earlier.id),
                );
            }
            if rule.condition == always {
                catch_all = Some(&rule.id);
            }
        }
    }
}
