//! Go's named items: functions, methods (`T.M`), and each spec of a type, const or var
//! declaration at the top of a file.

use tree_sitter::Node;

use super::{Visit, named, text};

pub(super) fn classify<'t>(node: Node<'t>, source: &str) -> Visit<'t> {
    match node.kind() {
        "function_declaration" => {
            let name = node.child_by_field_name("name");
            named(node, name.and_then(|name| text(name, source)))
        }
        "method_declaration" => {
            let receiver = node
                .child_by_field_name("receiver")
                .and_then(|list| list.named_child(0))
                .and_then(|parameter| parameter.child_by_field_name("type"))
                .and_then(type_name)
                .and_then(|ty| text(ty, source));
            let method = node
                .child_by_field_name("name")
                .and_then(|name| text(name, source));
            let name = receiver.zip(method).map(|(r, m)| format!("{r}.{m}"));
            named(node, name.as_deref())
        }
        "type_spec" | "type_alias" => spec(node, source),
        "const_spec" | "var_spec" if top_level(declaration(node)) => spec(node, source),
        _ => Visit::Descend,
    }
}

/// The declaration a spec belongs to, through `var ( ... )`'s list.
fn declaration(spec: Node) -> Option<Node> {
    let parent = spec.parent()?;
    if parent.kind() == "var_spec_list" {
        parent.parent()
    } else {
        Some(parent)
    }
}

fn top_level(declaration: Option<Node>) -> bool {
    declaration
        .and_then(|d| d.parent())
        .is_some_and(|p| p.kind() == "source_file")
}

/// One item per name of a spec (`var a, b = 1, 2`); with one spec, the whole declaration, its
/// keyword included.
fn spec<'t>(node: Node<'t>, source: &str) -> Visit<'t> {
    let mut cursor = node.walk();
    let names: Option<Vec<String>> = node
        .children_by_field_name("name", &mut cursor)
        .map(|name| text(name, source).map(str::to_owned))
        .collect();
    let span = declaration(node)
        .filter(|d| {
            let mut cursor = d.walk();
            let specs = d
                .named_children(&mut cursor)
                .map(|child| match child.kind() {
                    "var_spec_list" => child.named_child_count(),
                    "comment" => 0,
                    _ => 1,
                })
                .sum::<usize>();
            specs == 1
        })
        .unwrap_or(node);
    match names {
        Some(names) if !names.is_empty() => Visit::Item { names, span },
        _ => Visit::Skip,
    }
}

/// The type a method's receiver names, its pointer and type arguments stripped.
fn type_name(ty: Node) -> Option<Node> {
    match ty.kind() {
        "type_identifier" => Some(ty),
        "pointer_type" | "parenthesized_type" => ty.named_child(0).and_then(type_name),
        "generic_type" => ty.child_by_field_name("type").and_then(type_name),
        _ => None,
    }
}
