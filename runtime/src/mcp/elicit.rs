//! [`Elicitation`]: an approver that asks the MCP client that made the request, through
//! MCP elicitation, whether a gated call may proceed.

use async_trait::async_trait;
use rmcp::model::{
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, ProtocolVersion,
};
use rmcp::service::{ElicitationMode, Peer, RequestContext, RoleServer};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use warden_host_api::approval::{Answer, ApprovalRequest, Approver};

/// Asks the person behind an MCP client about each gated call of the task that answers
/// the client's request: a form with one yes/no field, `approve`.
///
/// Only where the client said it can (the `elicitation` capability) and the protocol lets
/// a server ask in the middle of a request (sessions negotiated before 2026-07-28). The
/// later protocol has no server-to-client requests: there the handler asks between rounds
/// of the request instead. Elsewhere the runtime's approver answers (by
/// default, refusing).
pub struct Elicitation {
    peer: Peer<RoleServer>,
}

impl Elicitation {
    /// The approver for one request, if its client can be asked.
    pub fn for_request(context: &RequestContext<RoleServer>) -> Option<Elicitation> {
        // Dates as version names order as strings do.
        let version = context.protocol_version()?;
        if version.as_str() >= ProtocolVersion::V_2026_07_28.as_str() {
            return None;
        }
        let modes = context.peer.supported_elicitation_modes();
        modes.contains(&ElicitationMode::Form).then(|| Elicitation {
            peer: context.peer.clone(),
        })
    }
}

#[async_trait]
impl Approver for Elicitation {
    fn name(&self) -> String {
        APPROVER.into()
    }

    async fn approve(&self, request: &ApprovalRequest) -> Answer {
        let Some(params) = question(request) else {
            return Answer::refuse(APPROVER, "could not build the question");
        };
        match self.peer.create_elicitation(params).await {
            Ok(answer) => decision(&answer),
            Err(e) => Answer::refuse(APPROVER, format!("the client did not answer: {e}")),
        }
    }
}

/// How records name an answer that came from the client.
pub(crate) const APPROVER: &str = "mcp-elicitation";

/// The form that asks about `request`: one yes/no field, `approve`.
pub(crate) fn question(request: &ApprovalRequest) -> Option<ElicitRequestParams> {
    let schema = json!({
        "type": "object",
        "properties": {
            "approve": {
                "type": "boolean",
                "title": "Allow this call?",
                "description": format!("{} (rule: {})", request.summary, request.rule),
            }
        },
        "required": ["approve"],
    });
    let schema = ElicitationSchema::from_json_schema(schema.as_object()?.clone()).ok()?;
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!(
            "Warden: {}. The manifest requires approval for this ({}).",
            request.summary, request.rule
        ),
        requested_schema: schema,
    })
}

/// What the client's answer to [`question`] decides.
pub(crate) fn decision(answer: &ElicitResult) -> Answer {
    let yes = answer
        .content
        .as_ref()
        .and_then(|c| c.get("approve"))
        .and_then(|v| v.as_bool());
    match (&answer.action, yes) {
        (ElicitationAction::Accept, Some(true)) => {
            Answer::approve(APPROVER, "the client's user approved")
        }
        (ElicitationAction::Accept, _) => Answer::refuse(APPROVER, "the client's user answered no"),
        (ElicitationAction::Decline, _) => Answer::refuse(APPROVER, "the client's user declined"),
        (ElicitationAction::Cancel, _) => Answer::refuse(APPROVER, "the client's user cancelled"),
        _ => Answer::refuse(APPROVER, "the client gave an answer Warden does not know"),
    }
}

/// An approver for a task whose client is asked between rounds of one `tools/call`
/// (protocol 2026-07-28, which has no server-to-client requests): each question goes to
/// the request handler, which returns it to the client as an input request and passes the
/// answer back when the client retries.
pub(crate) struct Relay {
    pub(crate) asks: mpsc::Sender<(ApprovalRequest, oneshot::Sender<Answer>)>,
}

#[async_trait]
impl Approver for Relay {
    fn name(&self) -> String {
        APPROVER.into()
    }

    async fn approve(&self, request: &ApprovalRequest) -> Answer {
        let (tx, rx) = oneshot::channel();
        if self.asks.send((request.clone(), tx)).await.is_err() {
            return Answer::refuse(APPROVER, "the MCP request was abandoned");
        }
        rx.await.unwrap_or_else(|_| {
            Answer::refuse(APPROVER, "the client did not come back with an answer")
        })
    }
}
