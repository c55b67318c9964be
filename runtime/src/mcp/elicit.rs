//! [`Elicitation`]: an approver that asks the MCP client that made the request, through
//! MCP elicitation, whether a gated call may proceed.

use async_trait::async_trait;
use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema, ProtocolVersion};
use rmcp::service::{ElicitationMode, Peer, RequestContext, RoleServer};
use serde_json::json;
use warden_host_api::approval::{ApprovalRequest, Approver, Decision};

/// Asks the person behind an MCP client about each gated call of the task that answers
/// the client's request: a form with one yes/no field, `approve`.
///
/// Only where the client said it can (the `elicitation` capability) and the protocol lets
/// a server ask in the middle of a request (sessions negotiated before 2026-07-28; the
/// later protocol has no server-to-client requests). Elsewhere [`Elicitation::for_request`]
/// gives `None` and the runtime's approver answers (by default, refusing).
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
        "mcp-elicitation".into()
    }

    async fn approve(&self, request: &ApprovalRequest) -> Decision {
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
        let schema = match schema
            .as_object()
            .cloned()
            .map(ElicitationSchema::from_json_schema)
        {
            Some(Ok(schema)) => schema,
            _ => return Decision::refuse(self.name(), "could not build the question"),
        };
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: format!(
                "Warden: {}. The manifest requires approval for this ({}).",
                request.summary, request.rule
            ),
            requested_schema: schema,
        };
        let answer = match self.peer.create_elicitation(params).await {
            Ok(answer) => answer,
            Err(e) => {
                return Decision::refuse(self.name(), format!("the client did not answer: {e}"));
            }
        };
        let yes = answer
            .content
            .as_ref()
            .and_then(|c| c.get("approve"))
            .and_then(|v| v.as_bool());
        match (answer.action, yes) {
            (ElicitationAction::Accept, Some(true)) => {
                Decision::approve(self.name(), "the client's user approved")
            }
            (ElicitationAction::Accept, _) => {
                Decision::refuse(self.name(), "the client's user answered no")
            }
            (ElicitationAction::Decline, _) => {
                Decision::refuse(self.name(), "the client's user declined")
            }
            (ElicitationAction::Cancel, _) => {
                Decision::refuse(self.name(), "the client's user cancelled")
            }
            _ => Decision::refuse(
                self.name(),
                "the client gave an answer Warden does not know",
            ),
        }
    }
}
