//! metav1 Conditions as both controllers write them: built with the generation they
//! describe, keeping `lastTransitionTime` while a condition's status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The API server caps condition messages at 32 KiB.
const MAX_MESSAGE: usize = 32 * 1024;

/// A condition of `generation`, transitioning `now`.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: truncate(message),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// A condition keeps its `lastTransitionTime` while its status does not change, so an
/// unchanged status compares equal and is not written again.
pub fn keep_transition_times(old: &[Condition], mut new: Vec<Condition>) -> Vec<Condition> {
    for condition in &mut new {
        if let Some(previous) = old
            .iter()
            .find(|c| c.type_ == condition.type_ && c.status == condition.status)
        {
            condition.last_transition_time = previous.last_transition_time.clone();
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let then = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let old = vec![condition("Ready", "True", "Ready", "ok", Some(1), then)];
        let new = keep_transition_times(
            &old,
            vec![condition(
                "Ready",
                "True",
                "Ready",
                "ok",
                Some(2),
                Timestamp::now(),
            )],
        );
        assert_eq!(new[0].last_transition_time, Time(then));
        let flipped = keep_transition_times(
            &old,
            vec![condition(
                "Ready",
                "False",
                "Progressing",
                "x",
                Some(2),
                Timestamp::now(),
            )],
        );
        assert_ne!(flipped[0].last_transition_time, Time(then));
    }

    #[test]
    fn long_messages_are_cut_at_the_api_limit() {
        let long = "é".repeat(MAX_MESSAGE);
        assert!(
            condition("Ready", "False", "X", &long, None, Timestamp::now())
                .message
                .len()
                <= MAX_MESSAGE
        );
    }
}
