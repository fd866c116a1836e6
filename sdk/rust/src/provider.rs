//! The OpenFeature provider (`open-feature` 0.3): `Provider::new(client)` answers every
//! resolution from the client's snapshot, in-process. A context is prepared per resolution
//! (OpenFeature passes the context each time); for the fastest path use [`crate::Client`]'s
//! typed API with a [`crate::PreparedContext`].

use async_trait::async_trait;
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, StructValue, Value as OfValue,
};
use serde_json::{Map, Value};

use crate::{Client, Context, Details, ErrorCode, Reason, Status};

/// An OpenFeature provider over a [`Client`].
#[derive(Debug)]
pub struct Provider {
    client: Client,
    metadata: ProviderMetadata,
}

impl Provider {
    /// The provider for `client`.
    pub fn new(client: Client) -> Provider {
        Provider {
            client,
            metadata: ProviderMetadata::new("flags-sdk"),
        }
    }
}

/// OpenFeature's context as the SDK's attributes (`targetingKey` plus the custom fields; a
/// date-time as RFC 3339 text, which `before`/`after` rules read).
pub fn context_attrs(context: &EvaluationContext) -> Map<String, Value> {
    let mut attrs = Map::new();
    if let Some(key) = &context.targeting_key {
        attrs.insert("targetingKey".into(), Value::String(key.clone()));
    }
    for (name, value) in &context.custom_fields {
        let value = match value {
            EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
            EvaluationContextFieldValue::Int(i) => Value::from(*i),
            EvaluationContextFieldValue::Float(f) => Value::from(*f),
            EvaluationContextFieldValue::String(s) => Value::String(s.clone()),
            EvaluationContextFieldValue::DateTime(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .map(Value::String)
                .unwrap_or(Value::Null),
            EvaluationContextFieldValue::Struct(s) => {
                s.downcast_ref::<Value>().cloned().unwrap_or(Value::Null)
            }
        };
        attrs.insert(name.clone(), value);
    }
    attrs
}

impl Provider {
    fn resolve<T>(
        &self,
        key: &str,
        context: &EvaluationContext,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let prepared = self
            .client
            .prepare(&Context::from_json(context_attrs(context)));
        let details = self.client.details(key, &prepared);
        to_resolution(details, convert)
    }
}

fn to_resolution<T>(
    details: Details,
    convert: impl FnOnce(&Value) -> Option<T>,
) -> EvaluationResult<ResolutionDetails<T>> {
    let error = |code: EvaluationErrorCode, message: &str| {
        Err(EvaluationError::builder()
            .code(code)
            .message(message.to_owned())
            .build())
    };
    if details.not_ready {
        return error(EvaluationErrorCode::ProviderNotReady, "no flags loaded yet");
    }
    if let Some(code) = details.error {
        let code = match code {
            ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
            ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
            ErrorCode::ParseError => EvaluationErrorCode::ParseError,
            ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
            _ => EvaluationErrorCode::General("evaluation failed".into()),
        };
        return error(code, code_text(details.error));
    }
    let Some(value) = details.value else {
        // No value: the caller's default applies (a flagd flag without a default variant).
        return error(
            EvaluationErrorCode::General("no value".into()),
            "no value: use the default",
        );
    };
    let Some(value) = convert(&value) else {
        return error(
            EvaluationErrorCode::TypeMismatch,
            "flag value is of another type",
        );
    };
    let reason = match details.reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => EvaluationReason::Error,
        _ => EvaluationReason::Default,
    };
    let mut resolution = ResolutionDetails::new(value);
    resolution.variant = details.variant;
    resolution.reason = Some(reason);
    Ok(resolution)
}

fn code_text(code: Option<ErrorCode>) -> &'static str {
    code.map_or("evaluation failed", ErrorCode::as_str)
}

fn to_struct(value: &Value) -> Option<StructValue> {
    match OfValue::try_from(value).ok()? {
        OfValue::Struct(s) => Some(s),
        _ => None,
    }
}

#[async_trait]
impl FeatureProvider for Provider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        match self.client.status().status {
            Status::Ready => ProviderStatus::Ready,
            Status::Stale => ProviderStatus::STALE,
            Status::NotReady => ProviderStatus::NotReady,
            Status::Error | Status::Fatal => ProviderStatus::Error,
        }
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, context, Value::as_bool)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, context, Value::as_i64)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag_key, context, Value::as_f64)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, context, |v| v.as_str().map(str::to_owned))
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(flag_key, context, to_struct)
    }
}
