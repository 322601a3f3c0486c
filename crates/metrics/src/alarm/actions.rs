//! Alarm actions: `http(s)://...` webhooks (POST of an SNS-notification-like JSON message) and
//! `berth:command:<shell command>` (run with `/bin/sh -c` and ALARM_NAME/ALARM_STATE/ALARM_REASON),
//! and Application Auto Scaling policy ARNs (`arn:aws:autoscaling:...:scalingPolicy:...`), which
//! berth-autoscaling acts on itself by watching alarm states.

use super::manager::AlarmStateChange;
use super::time::iso_offset;
use std::time::Duration;

/// How long one action may take.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// One action entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// POST the notification to this URL.
    Webhook(String),
    /// Run this shell command.
    Command(String),
    /// A scaling policy: Application Auto Scaling watches the alarm's state and runs it.
    ScalingPolicy(String),
}

impl Action {
    /// Parses an AlarmActions/OKActions/InsufficientDataActions entry.
    pub fn parse(entry: &str) -> Option<Action> {
        if let Some(cmd) = entry.strip_prefix("berth:command:") {
            return (!cmd.trim().is_empty()).then(|| Action::Command(cmd.to_string()));
        }
        if entry.starts_with("arn:aws:autoscaling:") && entry.contains(":scalingPolicy:") {
            return Some(Action::ScalingPolicy(entry.to_string()));
        }
        if (entry.starts_with("http://") || entry.starts_with("https://")) && entry.len() > 8 {
            return Some(Action::Webhook(entry.to_string()));
        }
        None
    }
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The webhook could not be reached or answered an error.
    #[error("webhook {url}: {message}")]
    Webhook {
        /// Target.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The command could not start, failed or timed out.
    #[error("command {command:?}: {message}")]
    Command {
        /// The command.
        command: String,
        /// What went wrong.
        message: String,
    },
}

/// The JSON a webhook receives: the fields of CloudWatch's SNS notification Message.
pub fn notification(change: &AlarmStateChange) -> serde_json::Value {
    serde_json::json!({
        "AlarmName": change.alarm_name,
        "AlarmDescription": change.alarm_description,
        "AWSAccountId": change.account,
        "AlarmConfigurationUpdatedTimestamp": iso_offset(change.configuration_updated),
        "NewStateValue": change.new_state.as_str(),
        "NewStateReason": change.reason,
        "StateChangeTime": iso_offset(change.timestamp),
        "Region": change.region,
        "AlarmArn": change.alarm_arn,
        "OldStateValue": change.old_state.as_str(),
        "AlarmType": change.alarm_type,
    })
}

/// Runs one action; returns a short description of what happened.
pub async fn run(
    action: &Action,
    change: &AlarmStateChange,
    client: &reqwest::Client,
) -> Result<String, ActionError> {
    match action {
        Action::ScalingPolicy(arn) => {
            Ok(format!("policy {arn} is run by Application Auto Scaling"))
        }
        Action::Webhook(url) => {
            let fail = |message: String| ActionError::Webhook {
                url: url.clone(),
                message,
            };
            let response = client
                .post(url)
                .timeout(ACTION_TIMEOUT)
                .json(&notification(change))
                .send()
                .await
                .map_err(|e| fail(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(fail(format!("answered {status}")));
            }
            Ok(format!("POST {url}: {status}"))
        }
        Action::Command(command) => {
            let fail = |message: String| ActionError::Command {
                command: command.clone(),
                message,
            };
            let child = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .env("ALARM_NAME", &change.alarm_name)
                .env("ALARM_STATE", change.new_state.as_str())
                .env("ALARM_OLD_STATE", change.old_state.as_str())
                .env("ALARM_REASON", &change.reason)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(ACTION_TIMEOUT, child)
                .await
                .map_err(|_| fail(format!("still running after {ACTION_TIMEOUT:?}; killed")))?
                .map_err(|e| fail(e.to_string()))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                return Err(fail(format!("{}: {}", output.status, stderr.trim())));
            }
            Ok(format!("command exited {}", output.status))
        }
    }
}
