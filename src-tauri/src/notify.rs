//! Native notifications for the events an admin must act on (R-B2, R-A4, R-E1, and
//! completed-with-errors when a job asks for it), and turning a click on one into a request
//! to open the view about it. No window needed: the app passes what to do with the request.

use std::sync::Mutex;

use notify_rust::{Notification, NotificationResponse, Timeout, Urgency};
use syncdesk_dto::NavigateDto;
use syncdesk_engine::{AlertSettings, Event, ExecutionStatus};
use tokio_util::sync::CancellationToken;

use crate::desktop::Desktop;
use crate::error::{DesktopError, Result};

/// The app name notification daemons show and group by.
pub const APP_NAME: &str = "Syncdesk";
/// The named action besides the default (click) one.
pub const INVESTIGATE: &str = "investigate";

/// A notification to raise, and the view it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
    pub target: NavigateDto,
    pub critical: bool,
}

fn open(view: &str, id: &str) -> NavigateDto {
    NavigateDto {
        view: view.to_string(),
        id: Some(id.to_string()),
    }
}

/// The notification an event deserves under its job's alert settings, if any. The alert
/// row itself is the engine's business and is recorded whether or not this shows.
pub fn notice_for(event: &Event, alerts: &AlertSettings) -> Option<Notice> {
    match event {
        Event::BreakerTripped {
            execution_id,
            job_name,
            note,
            ..
        } if alerts.on_circuit_breaker => Some(Notice {
            summary: format!("{job_name}: stopped early, most records were failing"),
            body: format!("{note} Click to investigate the execution."),
            target: open("execution", execution_id),
            critical: true,
        }),
        Event::RetriesExhausted {
            execution_id,
            job_name,
            attempts,
            ..
        } if alerts.on_retries_exhausted => Some(Notice {
            summary: format!("{job_name}: automatic retries exhausted"),
            body: format!(
                "The job failed {attempts} times in a row and will not be retried again \
                 automatically. Click to investigate."
            ),
            target: open("execution", execution_id),
            critical: true,
        }),
        Event::ConnectionExpired {
            connection_id,
            connection_name,
            detail,
        } if alerts.on_connection_expired => Some(Notice {
            summary: format!("{connection_name}: re-authentication needed"),
            body: format!("{detail}. Click to re-authenticate the connection."),
            target: open("connection", connection_id),
            critical: true,
        }),
        Event::ExecutionFinished {
            execution_id,
            job_name,
            status: ExecutionStatus::CompletedWithErrors,
            counts,
            ..
        } if alerts.on_completed_with_errors => Some(Notice {
            summary: format!("{job_name}: completed with errors"),
            body: format!(
                "{} of {} records failed. Click to see the error log.",
                counts.failed, counts.processed
            ),
            target: open("execution", execution_id),
            critical: false,
        }),
        Event::RecordsDeadLettered {
            job_id,
            job_name,
            count,
            ..
        } if alerts.on_dead_letters => Some(Notice {
            summary: format!(
                "{job_name}: {count} {} moved to Failed Records",
                if *count == 1 { "record" } else { "records" }
            ),
            body: "They failed in three runs in a row and are no longer tried automatically. \
                   Click to retry or dismiss them."
                .into(),
            target: open("failed_records", job_id),
            critical: false,
        }),
        _ => None,
    }
}

/// Whether an event might deserve a notification, so the caller looks up the job's alert
/// settings only for those.
pub fn may_notify(event: &Event) -> bool {
    event.notifies()
        || matches!(
            event,
            Event::ExecutionFinished {
                status: ExecutionStatus::CompletedWithErrors,
                ..
            }
        )
}

/// What a notification is about: withdrawn when that job's or connection's alerts resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Job(String),
    Connection(String),
}

/// The subject of an event that may notify.
pub fn subject_of(event: &Event) -> Option<Subject> {
    match event {
        Event::BreakerTripped { job_id, .. }
        | Event::RetriesExhausted { job_id, .. }
        | Event::RecordsDeadLettered { job_id, .. }
        | Event::ExecutionFinished { job_id, .. } => Some(Subject::Job(job_id.clone())),
        Event::ConnectionExpired { connection_id, .. } => {
            Some(Subject::Connection(connection_id.clone()))
        }
        _ => None,
    }
}

/// The notifications on screen, each with the token that withdraws it.
#[derive(Debug, Default)]
pub struct Shown(Mutex<OnScreen>);

/// The last number given, and each notice on screen: its number, subject and token.
#[derive(Debug, Default)]
struct OnScreen(u64, Vec<(u64, Subject, CancellationToken)>);

impl Shown {
    /// Register a notice about `subject`: its number, and a token cancelled with `parent` or
    /// when the notice is withdrawn.
    fn add(&self, subject: Subject, parent: &CancellationToken) -> (u64, CancellationToken) {
        let token = parent.child_token();
        let mut shown = self.0.lock().expect("shown lock");
        shown.0 += 1;
        let id = shown.0;
        shown.1.push((id, subject, token.clone()));
        (id, token)
    }

    fn remove(&self, id: u64) {
        self.0
            .lock()
            .expect("shown lock")
            .1
            .retain(|(i, _, _)| *i != id);
    }

    /// Withdraw the notifications about `job` or `connection` (their cause cleared);
    /// returns how many.
    pub fn withdraw(&self, job: Option<&str>, connection: Option<&str>) -> usize {
        let mut shown = self.0.lock().expect("shown lock");
        let mut n = 0;
        shown.1.retain(|(_, subject, token)| {
            let about = match subject {
                Subject::Job(j) => job == Some(j.as_str()),
                Subject::Connection(c) => connection == Some(c.as_str()),
            };
            if about {
                token.cancel();
                n += 1;
            }
            !about
        });
        n
    }
}

/// Show a notice and wait until the admin clicks it, picks "Investigate", closes it, or
/// `cancel` fires (the app stops, or the notice is withdrawn: then it is closed). A click or "Investigate" yields the view to open. Any process on the
/// session bus can forge an action signal, so the result is only ever a request to show
/// something, never an authorisation to do anything.
pub async fn show_and_wait(
    notice: &Notice,
    cancel: &CancellationToken,
) -> Result<Option<NavigateDto>> {
    let handle = Notification::new()
        .appname(APP_NAME)
        .summary(&notice.summary)
        .body(&notice.body)
        .action("default", "Open")
        .action(INVESTIGATE, "Investigate")
        .urgency(if notice.critical {
            Urgency::Critical
        } else {
            Urgency::Normal
        })
        // Stay until acted on: the point is that the admin finds out.
        .timeout(Timeout::Never)
        .show_async()
        .await
        .map_err(|e| DesktopError::Notification(e.to_string()))?;
    let picked: Mutex<Option<bool>> = Mutex::new(None);
    tokio::select! {
        () = handle.wait_for_action_async(|r| {
            let open = matches!(r, NotificationResponse::Default)
                || matches!(r, NotificationResponse::Action(a) if a == INVESTIGATE);
            *picked.lock().expect("picked lock") = Some(open);
        }) => {}
        () = cancel.cancelled() => {
            handle.close_async().await;
            return Ok(None);
        }
    }
    let opened = picked.lock().expect("picked lock").unwrap_or(false);
    Ok(opened.then(|| notice.target.clone()))
}

/// The whole path from an engine event to a request to open a view: the job's alert
/// settings, the notice, the notification, the click. A failure to show is logged and
/// recorded in the app's health (the engine has already recorded the alert itself).
pub async fn on_event(
    desktop: &Desktop,
    event: &Event,
    cancel: &CancellationToken,
) -> Option<NavigateDto> {
    if !may_notify(event) {
        return None;
    }
    let alerts = match event {
        Event::BreakerTripped { job_id, .. }
        | Event::RetriesExhausted { job_id, .. }
        | Event::RecordsDeadLettered { job_id, .. }
        | Event::ExecutionFinished { job_id, .. } => match desktop.engine().job(job_id).await {
            Ok(job) => job.settings.alerts,
            Err(e) => {
                tracing::warn!(error = %e, "the job of an event is gone");
                AlertSettings::default()
            }
        },
        _ => AlertSettings::default(),
    };
    let notice = notice_for(event, &alerts)?;
    let (id, cancel) = match subject_of(event) {
        Some(subject) => {
            let (id, token) = desktop.shown().add(subject, cancel);
            (Some(id), token)
        }
        None => (None, cancel.child_token()),
    };
    let shown = show_and_wait(&notice, &cancel).await;
    if let Some(id) = id {
        desktop.shown().remove(id);
    }
    match shown {
        Ok(target) => {
            desktop.set_notifications(Ok(()));
            target
        }
        Err(e) => {
            tracing::warn!(error = %e, summary = %notice.summary, "notification not shown");
            desktop.set_notifications(Err(e.to_string()));
            None
        }
    }
}

/// Ask the session's notification daemon who it is; an error says why notifications cannot
/// be shown (no session bus, no daemon, a daemon that cannot start without a display).
pub async fn probe() -> Result<String> {
    // The library only offers this call blocking; keep it off the async workers.
    tokio::task::spawn_blocking(notify_rust::get_server_information)
        .await
        .map_err(|e| DesktopError::Notification(e.to_string()))?
        .map(|i| format!("{} {}", i.name, i.version))
        .map_err(|e| DesktopError::Notification(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_alerts_withdraw_only_the_notices_about_their_subject() {
        let shown = Shown::default();
        let app = CancellationToken::new();
        let (_, job) = shown.add(Subject::Job("j1".into()), &app);
        let (_, other) = shown.add(Subject::Job("j2".into()), &app);
        let (conn_id, conn) = shown.add(Subject::Connection("c1".into()), &app);
        assert_eq!(shown.withdraw(Some("j1"), None), 1);
        assert!(job.is_cancelled() && !other.is_cancelled() && !conn.is_cancelled());
        shown.remove(conn_id);
        assert_eq!(
            shown.withdraw(None, Some("c1")),
            0,
            "a closed notice is gone"
        );
        assert_eq!(shown.withdraw(Some("j2"), Some("c9")), 1);
        assert!(other.is_cancelled());
    }
    use syncdesk_engine::Counts;

    #[test]
    fn only_actionable_events_notify_and_each_opens_its_subject() {
        let alerts = AlertSettings::default();
        let tripped = Event::BreakerTripped {
            execution_id: "ex1".into(),
            job_id: "j".into(),
            job_name: "customers".into(),
            note: "Stopped early: 6 of 10 failed.".into(),
        };
        let n = notice_for(&tripped, &alerts).unwrap();
        assert_eq!(n.target, open("execution", "ex1"));
        assert!(n.summary.contains("stopped early"), "{}", n.summary);
        let expired = Event::ConnectionExpired {
            connection_id: "c1".into(),
            connection_name: "sandbox".into(),
            detail: "refresh refused".into(),
        };
        assert_eq!(
            notice_for(&expired, &alerts).unwrap().target,
            open("connection", "c1")
        );
        let done = Event::ExecutionFinished {
            execution_id: "ex2".into(),
            job_id: "j".into(),
            job_name: "customers".into(),
            status: ExecutionStatus::CompletedWithErrors,
            counts: Counts::default(),
            note: None,
        };
        assert!(may_notify(&done));
        assert_eq!(notice_for(&done, &alerts), None, "off by default");
        let on = AlertSettings {
            on_completed_with_errors: true,
            ..AlertSettings::default()
        };
        assert_eq!(
            notice_for(&done, &on).unwrap().target,
            open("execution", "ex2")
        );
        let off = AlertSettings {
            on_circuit_breaker: false,
            ..AlertSettings::default()
        };
        assert_eq!(notice_for(&tripped, &off), None);
        let progress = Event::DeadLettered {
            job_id: "j".into(),
            record_id: "r".into(),
        };
        assert!(!may_notify(&progress));
    }
}
