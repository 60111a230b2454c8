//! Rust's named items: every item kind at any level, an `impl` named after its type.

use tree_sitter::Node;

use super::{Visit, named, text};

pub(super) fn classify<'t>(node: Node<'t>, source: &str) -> Visit<'t> {
    match node.kind() {
        "function_item"
        | "function_signature_item"
        | "struct_item"
        | "enum_item"
        | "union_item"
        | "trait_item"
        | "mod_item"
        | "const_item"
        | "static_item"
        | "type_item"
        | "associated_type"
        | "macro_definition" => item(node, node.child_by_field_name("name"), source),
        // `impl<T> fmt::Display for Wrapper<T>` holds `Wrapper`'s methods: `Wrapper.fmt`.
        "impl_item" => {
            let ty = node.child_by_field_name("type");
            item(node, ty.and_then(type_name), source)
        }
        _ => Visit::Descend,
    }
}

/// `r#type` is the function `type`.
fn item<'t>(node: Node<'t>, name: Option<Node>, source: &str) -> Visit<'t> {
    let name = name.and_then(|name| text(name, source));
    named(
        node,
        name.map(|name| name.strip_prefix("r#").unwrap_or(name)),
    )
}

/// The bare name of a type, its generics, path and references stripped; `None` for a type
/// without one (a slice, a tuple, a function pointer).
fn type_name(ty: Node) -> Option<Node> {
    match ty.kind() {
        "type_identifier" | "primitive_type" => Some(ty),
        "generic_type" => ty.child_by_field_name("type").and_then(type_name),
        "scoped_type_identifier" => ty.child_by_field_name("name"),
        // `identifier` as the last part of a path written with `::<>`.
        "scoped_identifier" => ty.child_by_field_name("name"),
        "identifier" => Some(ty),
        "reference_type" | "pointer_type" => ty.child_by_field_name("type").and_then(type_name),
        _ => None,
    }
}
