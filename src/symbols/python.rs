//! Python's named items: classes and functions at any depth, module-level assignments.

use tree_sitter::Node;

use super::{Visit, named, text};

pub(super) fn classify<'t>(node: Node<'t>, source: &str) -> Visit<'t> {
    match node.kind() {
        "function_definition" | "class_definition" => {
            // The decorators are part of what they decorate.
            let span = node
                .parent()
                .filter(|parent| parent.kind() == "decorated_definition")
                .unwrap_or(node);
            let name = node.child_by_field_name("name");
            named(span, name.and_then(|name| text(name, source)))
        }
        // `X = ...` and `X: int = ...` at the top of a module: its constants and settings.
        "expression_statement" if node.parent().is_some_and(|p| p.kind() == "module") => {
            let left = node
                .named_child(0)
                .filter(|child| child.kind() == "assignment")
                .and_then(|assignment| assignment.child_by_field_name("left"))
                .filter(|left| left.kind() == "identifier");
            match left {
                Some(left) => named(node, text(left, source)),
                None => Visit::Descend,
            }
        }
        _ => Visit::Descend,
    }
}
