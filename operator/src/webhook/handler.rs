//! The admission handler: AdmissionReview bytes in, AdmissionReview bytes out. One
//! handler for every kind: it reads the object as its kind and calls
//! `admission::check_manifest`, the one implementation of every rule (`thv validate` runs
//! the same). Errors deny, listing every problem as `<field path>: <what is wrong>;
//! <what is allowed>`; warnings (missing references, deprecated or ineffective
//! settings) are admission warnings, which kubectl prints.
//!
//! Synchronous and free of I/O except through [`Catalogs`], so the fuzz target and unit
//! tests drive exactly what the server runs.

use std::time::Instant;

use admission::{Finding, Report, check_manifest};
use api::Manifest;
use api::manifest::{KINDS, ManifestError};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails};
use kube::core::{DynamicObject, Status};
use serde_json::json;

use super::catalog::Catalogs;

/// Largest AdmissionReview read. The API server limits objects to 3 MiB in etcd; a
/// review carries the object twice on update, but an object of our kinds near that
/// size is not a configuration anyone writes, so more is refused unread.
pub const MAX_REVIEW_BYTES: usize = 3 * 1024 * 1024;

/// How a review ended, for the `result` label of the request counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted (possibly with warnings).
    Allowed,
    /// Denied: the object is invalid.
    Denied,
    /// No decision: the request was malformed or a lookup failed.
    Error,
}

impl Verdict {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// What a review was about, for the `kind` label of the request counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewedKind {
    /// A kind of our API group (one of [`KINDS`]).
    Ours(&'static str),
    /// Anything else: another group's kind, or a request that could not be read.
    Other,
}

impl ReviewedKind {
    /// The kind of `group`/`kind`.
    pub fn of(group: &str, kind: &str) -> Self {
        KINDS
            .iter()
            .find(|k| **k == kind && group == api::GROUP)
            .map_or(Self::Other, |k| Self::Ours(k))
    }

    /// The metric label: the kind, or `other`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ours(kind) => kind,
            Self::Other => "other",
        }
    }
}

/// An HTTP answer to one review.
#[derive(Debug)]
pub struct Answer {
    /// 200 with an AdmissionReview; 400 (malformed request) or 500 (lookup failed)
    /// with a `v1` `Status` whose `message` says why.
    pub status: u16,
    /// JSON.
    pub body: Vec<u8>,
    /// The kind reviewed.
    pub kind: ReviewedKind,
    /// How it ended.
    pub verdict: Verdict,
}

impl Answer {
    /// A request that could not be decided; `status` 400 or 500. The body is a `v1`
    /// `Status`: the API server's client reads the message of a failed call only from
    /// one (or from a `text/` body); from any other JSON it tells the user the error was
    /// `"unknown"` (client-go's `Result.Error`). kubectl then prints `Internal error
    /// occurred: failed calling webhook "…": failed to call webhook: <message>`.
    pub fn error(status: u16, kind: ReviewedKind, message: &str) -> Self {
        let reason = match status {
            400 => "BadRequest",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            _ => "InternalError",
        };
        let body = json!({
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": status,
        });
        Self {
            status,
            body: body.to_string().into_bytes(),
            kind,
            verdict: Verdict::Error,
        }
    }
}

/// Why a review could not be decided.
struct Failure {
    status: u16,
    message: String,
}

impl Failure {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
}

/// Reviews one AdmissionReview (`admission.k8s.io/v1`). Lookups stop at `deadline`.
pub fn review(body: &[u8], catalogs: &dyn Catalogs, deadline: Instant) -> Answer {
    if body.len() > MAX_REVIEW_BYTES {
        let message = format!(
            "the AdmissionReview is {} bytes; at most {MAX_REVIEW_BYTES} bytes (3 MiB)",
            body.len()
        );
        return Answer::error(400, ReviewedKind::Other, &message);
    }
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(e) => {
            let message = format!(
                "malformed AdmissionReview: {e}; an admission.k8s.io/v1 AdmissionReview in JSON"
            );
            return Answer::error(400, ReviewedKind::Other, &message);
        }
    };
    if review.types.api_version != "admission.k8s.io/v1" || review.types.kind != "AdmissionReview" {
        let message = format!(
            "the body is {} {}; an admission.k8s.io/v1 AdmissionReview",
            review.types.api_version, review.types.kind
        );
        return Answer::error(400, ReviewedKind::Other, &message);
    }
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return Answer::error(
                400,
                ReviewedKind::Other,
                "the AdmissionReview has no request",
            );
        }
    };
    let kind = ReviewedKind::of(&request.kind.group, &request.kind.kind);
    match admit(&request, kind, catalogs, deadline) {
        Ok(response) => {
            let verdict = if response.allowed {
                Verdict::Allowed
            } else {
                Verdict::Denied
            };
            match serde_json::to_vec(&response.into_review()) {
                Ok(body) => Answer {
                    status: 200,
                    body,
                    kind,
                    verdict,
                },
                Err(e) => Answer::error(500, kind, &format!("serialising the response: {e}")),
            }
        }
        Err(failure) => Answer::error(failure.status, kind, &failure.message),
    }
}

fn admit(
    request: &AdmissionRequest<DynamicObject>,
    kind: ReviewedKind,
    catalogs: &dyn Catalogs,
    deadline: Instant,
) -> Result<AdmissionResponse, Failure> {
    let response = AdmissionResponse::from(request);
    let ReviewedKind::Ours(kind) = kind else {
        return Ok(response); // not ours to judge: the configuration routes only our kinds
    };
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Ok(response);
    }
    let Some(object) = &request.object else {
        return Err(Failure::bad_request(format!(
            "the {:?} request for {kind} {} has no object",
            request.operation, request.name
        )));
    };
    if request.operation == Operation::Update && !changes_spec(request, object) {
        // Metadata, labels, finalizers: nothing a rule looks at changed. Refusing would
        // block deleting an object admitted before the webhook existed.
        return Ok(response);
    }
    let namespace = request
        .namespace
        .clone()
        .or_else(|| object.metadata.namespace.clone())
        .unwrap_or_default();
    let mut object = object.clone();
    object.metadata.namespace = Some(namespace.clone());
    let name = object
        .metadata
        .name
        .clone()
        .or_else(|| object.metadata.generate_name.clone())
        .unwrap_or_default();
    let value = serde_json::to_value(&object)
        .map_err(|e| Failure::bad_request(format!("the object is not JSON: {e}")))?;
    let manifest = match Manifest::from_value_of_kind(api::GROUP, kind, value) {
        Ok(manifest) => manifest,
        Err(e) => return Ok(respond(response, kind, &name, &unreadable(e))),
    };
    let requested = request.request_kind.as_ref().unwrap_or(&request.kind);
    let api_version = format!("{}/{}", requested.group, requested.version);
    let mut report = Report::default();
    catalogs
        .with_namespace(&namespace, deadline, &mut |catalog| {
            report = check_manifest(&manifest, &api_version, catalog);
        })
        .map_err(|message| Failure {
            status: 500,
            message,
        })?;
    Ok(respond(response, kind, &name, &report))
}

/// Whether an update changes anything the rules look at: the spec (and the apiVersion,
/// for the deprecation warning, is the request's, not the object's). An object being
/// deleted changes nothing that matters any more.
fn changes_spec(request: &AdmissionRequest<DynamicObject>, object: &DynamicObject) -> bool {
    if object.metadata.deletion_timestamp.is_some() {
        return false;
    }
    match &request.old_object {
        Some(old) => old.data.get("spec") != object.data.get("spec"),
        None => true,
    }
}

/// A report with the one error of an object that cannot be read as its kind (the API
/// server's schema makes this rare: a value its schema allows but our types do not).
fn unreadable(error: ManifestError) -> Report {
    Report {
        errors: vec![Finding::from(error)],
        warnings: Vec::new(),
    }
}

/// The response for `report`: warnings always; a denial listing every error, with the
/// errors also as status causes (kubectl prints them as `The MCPServer "x" is invalid:
/// * <path>: <message>`).
fn respond(
    mut response: AdmissionResponse,
    kind: &str,
    name: &str,
    report: &Report,
) -> AdmissionResponse {
    if !report.warnings.is_empty() {
        response.warnings = Some(report.warnings.iter().map(ToString::to_string).collect());
    }
    if report.errors.is_empty() {
        return response;
    }
    let count = match report.errors.len() {
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    let list: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    let message = format!(
        "{kind} {name} is invalid ({count}):\n- {}",
        list.join("\n- ")
    );
    let causes = report
        .errors
        .iter()
        .map(|f| StatusCause {
            reason: "FieldValueInvalid".to_owned(),
            message: f.message.clone(),
            field: f.path.clone(),
        })
        .collect();
    response.allowed = false;
    response.result = Status::failure(&message, "Invalid")
        .with_code(422)
        .with_details(StatusDetails {
            name: name.to_owned(),
            group: api::GROUP.to_owned(),
            kind: kind.to_owned(),
            uid: String::new(),
            causes,
            retry_after_seconds: 0,
        });
    response
}

#[cfg(test)]
mod tests;
