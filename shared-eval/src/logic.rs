//! Compiled JSONLogic, for flags imported from the flagd flag-definition format.
//! (Stub: the flagd-import work fills this in.)

use serde::{Deserialize, Serialize};

/// A compiled JSONLogic expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A literal.
    Lit(serde_json::Value),
}
