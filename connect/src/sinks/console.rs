//! The `console` sink: [`connector_core::console::ConsoleSink`] with a
//! property map.

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::console::ConsoleSink;
use connector_core::format::template::Template;
use connector_core::{Properties, Result, Sink};

/// The properties of the `console` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "console",
    role: Role::Sink,
    description: "Prints each record on its own line: JSON, or rendered by a template.",
    properties: &[
        PropertySpec::optional(
            "template",
            PropertyKind::String,
            None,
            "Line template with `{{ .column }}` (Go template syntax); empty prints the record as a JSON object.",
        ),
        PropertySpec::optional(
            "change_kind",
            PropertyKind::Boolean,
            Some("false"),
            "Prefix each line with the record's change kind (`insert: `, `delete: `, ...), for change streams.",
        ),
        PropertySpec::optional(
            "stream",
            PropertyKind::Choice(&["stdout", "stderr"]),
            Some("stdout"),
            "Where to print: `stdout` or `stderr`.",
        ),
    ],
};

/// The console sink's settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    template: Option<Template>,
    change_kind: bool,
    stderr: bool,
}

impl ConsoleConfig {
    /// Reads the properties of [`SPEC`].
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let template = match r.optional::<String>("template").filter(|t| !t.is_empty()) {
            Some(text) => match Template::parse(&text) {
                Ok(t) => Some(t),
                Err(e) => {
                    r.invalid("template", e);
                    None
                }
            },
            None => None,
        };
        let change_kind: bool = r.required("change_kind");
        let stream: String = r.required("stream");
        r.finish()?;
        Ok(ConsoleConfig {
            template,
            change_kind,
            stderr: stream == "stderr",
        })
    }

    /// The sink.
    pub fn build(self) -> Box<dyn Sink> {
        let sink = if self.stderr {
            ConsoleSink::to_writer(std::io::stderr())
        } else {
            ConsoleSink::stdout()
        };
        let sink = sink.with_change_kind(self.change_kind);
        Box::new(match self.template {
            Some(t) => sink.with_template(t),
            None => sink,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_template_is_a_config_error() {
        let err =
            ConsoleConfig::from_properties(&Properties::from_pairs([("template", "{{ .device")]))
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("console sink: property `template`:"),
            "{err}"
        );
    }
}
