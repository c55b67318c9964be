//! `echo`: the smallest `warden:tool` component. It returns its input
//! unchanged and touches nothing, so it measures the runtime, not the tool.

wit_bindgen::generate!({
    path: "../../wit",
    world: "warden:tool/tool",
    generate_all,
});

struct Echo;

impl Guest for Echo {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "echo".into(),
            description: "Returns its JSON input unchanged.".into(),
            // `true` is the draft 2020-12 schema that accepts any JSON value.
            input_schema: "true".into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        // The host hands over JSON; parsing it here would only add cost to a
        // tool whose job is to be the cheapest possible call.
        Ok(input)
    }
}

export!(Echo);
