//! TypeScript's, TSX's and JavaScript's named items: one grammar family, one set of rules.

use tree_sitter::Node;

use super::{Visit, named, text};

pub(super) fn classify<'t>(node: Node<'t>, source: &str) -> Visit<'t> {
    match node.kind() {
        "function_declaration"
        | "generator_function_declaration"
        | "function_signature"
        | "class_declaration"
        | "abstract_class_declaration"
        | "interface_declaration"
        | "type_alias_declaration"
        | "enum_declaration"
        | "internal_module"
        | "module" => item(outer(node), node.child_by_field_name("name"), source),
        "method_definition" | "method_signature" | "abstract_method_signature" => {
            item(node, node.child_by_field_name("name"), source)
        }
        // A field holding a function is a method written differently; any other field is
        // part of its class.
        "public_field_definition" | "field_definition" if holds_function(node) => {
            let name = node
                .child_by_field_name("name")
                .or_else(|| node.child_by_field_name("property"));
            item(node, name, source)
        }
        "variable_declarator" => declarator(node, source),
        _ => Visit::Descend,
    }
}

/// `const login = () => ...` anywhere, any other `const/let/var` at the top of a module or
/// namespace: a local variable is part of its function.
fn declarator<'t>(node: Node<'t>, source: &str) -> Visit<'t> {
    let Some(declaration) = node.parent() else {
        return Visit::Descend;
    };
    let name = node.child_by_field_name("name");
    if name.is_none_or(|name| name.kind() != "identifier")
        || !(holds_function(node) || at_module_level(declaration))
    {
        return Visit::Descend;
    }
    // With one declarator, the item is the whole statement, `export const` and `;` included.
    let alone = declaration.named_child_count() == 1;
    item(if alone { outer(declaration) } else { node }, name, source)
}

fn holds_function(node: Node) -> bool {
    node.child_by_field_name("value").is_some_and(|value| {
        matches!(
            value.kind(),
            "arrow_function" | "function_expression" | "function" | "generator_function"
        )
    })
}

fn at_module_level(declaration: Node) -> bool {
    let Some(up) = outer(declaration).parent() else {
        return false;
    };
    match up.kind() {
        "program" => true,
        "statement_block" => up
            .parent()
            .is_some_and(|ns| matches!(ns.kind(), "internal_module" | "module")),
        _ => false,
    }
}

/// The node with the wrappers that only qualify it (`export`, `export default`, `declare`,
/// a namespace written as a statement): an edit of `export` is an edit of the item.
fn outer(mut node: Node) -> Node {
    while let Some(parent) = node.parent() {
        if !matches!(
            parent.kind(),
            "export_statement" | "ambient_declaration" | "expression_statement"
        ) {
            break;
        }
        node = parent;
    }
    node
}

fn item<'t>(span: Node<'t>, name: Option<Node>, source: &str) -> Visit<'t> {
    let name = name.and_then(|name| match name.kind() {
        "string" => text(name, source).map(|t| t.trim_matches(['"', '\'', '`'])),
        "computed_property_name" => None,
        // `#secret` and `secret` may share a lock: `#` separates a key's path from its symbol.
        _ => text(name, source).map(|t| t.trim_start_matches('#')),
    });
    named(span, name)
}
