//! Each language's items on a realistic small file, and the edits that touch them.

use super::{edit, list, names};
use crate::symbols::Language;

pub(super) const TYPESCRIPT: &str = r#"import { Db } from "./db";

/** Signs users in and out. */
export class UserService {
  private count = 0;

  // Runs on every click.
  onClick = () => {
    this.count++;
  };

  #secret() {
    return 1;
  }

  get total(): number {
    return this.count;
  }

  async login(user: string): Promise<void> {
    const local = 1;
    const cb = () => local;
  }

  @Log()
  logout(): void {}
}

export interface User {
  name: string;
}

export type Id = string | number;

export enum Role {
  Admin,
  Guest,
}

export default function main() {}

function* ids() {
  yield 1;
}

const handler = function () {};

export const LIMIT = 10, OTHER = 2;

let counter = 0;

namespace Tools {
  export function tool() {}
}

declare function ambient(a: string): void;

export abstract class Base {
  abstract run(): void;
}

for (let i = 0; i < 2; i++) {}
"#;

#[test]
fn typescript_items_are_named_by_their_path() {
    assert_eq!(
        names(Language::TypeScript, TYPESCRIPT),
        [
            "UserService",
            "UserService.onClick",
            "UserService.secret",
            "UserService.total",
            "UserService.login",
            "UserService.login.cb",
            "UserService.logout",
            "User",
            "Id",
            "Role",
            "main",
            "ids",
            "handler",
            "LIMIT",
            "OTHER",
            "counter",
            "Tools",
            "Tools.tool",
            "ambient",
            "Base",
            "Base.run",
        ]
    );
}

#[test]
fn typescript_edits_touch_members_comments_and_decorators() {
    let ts = Language::TypeScript;
    assert_eq!(
        edit(ts, TYPESCRIPT, "this.count++;"),
        list(&["UserService.onClick"])
    );
    assert_eq!(
        edit(ts, TYPESCRIPT, "// Runs on every click."),
        list(&["UserService.onClick"])
    );
    assert_eq!(
        edit(ts, TYPESCRIPT, "@Log()"),
        list(&["UserService.logout"])
    );
    assert_eq!(
        edit(ts, TYPESCRIPT, "/** Signs users in and out. */"),
        list(&["UserService"])
    );
    // A plain field is part of its class.
    assert_eq!(
        edit(ts, TYPESCRIPT, "private count = 0;"),
        list(&["UserService"])
    );
    // `export` belongs to the item it exports.
    assert_eq!(edit(ts, TYPESCRIPT, "export type Id"), list(&["Id"]));
    assert_eq!(
        edit(ts, TYPESCRIPT, "return this.count;\n  }\n\n  async login"),
        list(&["UserService.login", "UserService.total"])
    );
    assert_eq!(edit(ts, TYPESCRIPT, r#"import { Db } from "./db";"#), None);
    // A loop at the top of the module is no item.
    assert_eq!(edit(ts, TYPESCRIPT, "i < 2"), None);
}

#[test]
fn tsx_components_are_items() {
    let source = r#"import React from "react";

export function Button({ label }: { label: string }) {
  return <button className="b">{label}</button>;
}

export const Card = ({ title }: { title: string }) => (
  <div>
    <h1>{title}</h1>
  </div>
);
"#;
    assert_eq!(names(Language::Tsx, source), ["Button", "Card"]);
    assert_eq!(edit(Language::Tsx, source, "<h1>"), list(&["Card"]));
}

pub(super) const JAVASCRIPT: &str = r#"const fs = require("fs");

/** Counts things. */
class Counter {
  count = 0;
  bump = () => {
    this.count += 1;
  };
  static create() {
    return new Counter();
  }
}

export function load(path) {
  return fs.readFileSync(path);
}

function* walk() {}

export default class App extends Counter {
  render() {}
}

module.exports = { load };
"#;

#[test]
fn javascript_items_are_named_by_their_path() {
    assert_eq!(
        names(Language::JavaScript, JAVASCRIPT),
        [
            "fs",
            "Counter",
            "Counter.bump",
            "Counter.create",
            "load",
            "walk",
            "App",
            "App.render",
        ]
    );
    let js = Language::JavaScript;
    assert_eq!(
        edit(js, JAVASCRIPT, "this.count += 1;"),
        list(&["Counter.bump"])
    );
    assert_eq!(edit(js, JAVASCRIPT, "module.exports"), None);
}

pub(super) const PYTHON: &str = r#""""Module doc."""
import os

LIMIT = 10
TIMEOUT: float = 2.5
a, b = 1, 2


# Fetches pages.
@dataclass
class Service:
    """Doc."""

    retries = 3

    @property
    def name(self):
        def inner():
            return 1

        return inner()

    async def fetch(self, url):
        return url


# Doubles.
def helper(x):
    return x * 2
"#;

#[test]
fn python_items_are_named_by_their_path() {
    assert_eq!(
        names(Language::Python, PYTHON),
        [
            "LIMIT",
            "TIMEOUT",
            "Service",
            "Service.name",
            "Service.name.inner",
            "Service.fetch",
            "helper",
        ]
    );
}

#[test]
fn python_edits_touch_decorators_methods_and_constants() {
    let py = Language::Python;
    assert_eq!(edit(py, PYTHON, "@property"), list(&["Service.name"]));
    assert_eq!(edit(py, PYTHON, "@dataclass"), list(&["Service"]));
    assert_eq!(edit(py, PYTHON, "# Fetches pages."), list(&["Service"]));
    assert_eq!(edit(py, PYTHON, "return url"), list(&["Service.fetch"]));
    assert_eq!(edit(py, PYTHON, "retries = 3"), list(&["Service"]));
    assert_eq!(edit(py, PYTHON, "x * 2"), list(&["helper"]));
    assert_eq!(edit(py, PYTHON, "# Doubles."), list(&["helper"]));
    assert_eq!(edit(py, PYTHON, "LIMIT = 10"), list(&["LIMIT"]));
    assert_eq!(edit(py, PYTHON, "import os"), None);
    assert_eq!(edit(py, PYTHON, "a, b = 1, 2"), None);
}

pub(super) const GO: &str = r#"package main

import "fmt"

// Greeter greets.
type Greeter struct {
	name string
}

type (
	ID    int
	Alias = string
)

const Max = 10

var (
	a, b = 1, 2
	c    = 3
)

// Hello says hello.
func (g *Greeter) Hello() string {
	var local = 1
	return fmt.Sprint(g.name, local)
}

func (l List[T]) Len() int { return 0 }

func main() {
	fmt.Println(Max)
}
"#;

#[test]
fn go_items_are_named_by_their_path() {
    assert_eq!(
        names(Language::Go, GO),
        [
            "Greeter",
            "ID",
            "Alias",
            "Max",
            "a",
            "b",
            "c",
            "Greeter.Hello",
            "List.Len",
            "main",
        ]
    );
    let go = Language::Go;
    assert_eq!(edit(go, GO, "var local = 1"), list(&["Greeter.Hello"]));
    assert_eq!(
        edit(go, GO, "// Hello says hello."),
        list(&["Greeter.Hello"])
    );
    assert_eq!(edit(go, GO, "name string"), list(&["Greeter"]));
    assert_eq!(edit(go, GO, "a, b = 1, 2"), list(&["a", "b"]));
    assert_eq!(edit(go, GO, "import \"fmt\""), None);
    assert_eq!(edit(go, GO, "package main"), None);
}
