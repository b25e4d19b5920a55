"""Tools declared by the operator (no code): Mongo reads and writes, HTTP calls.

A declaration is data (stored and versioned by the admin API); it compiles into a strict argument
model and a handler that builds every query from validated fields, scoped to the verified caller.
"""

from tools.declared.arguments import ArgumentDeclaration, compile_arguments
from tools.declared.base import DeclarationBase, DeclaredToolResources, refuse
from tools.declared.builtin_declarations import BUILTIN_DECLARATIONS, builtin_declaration
from tools.declared.declaration import ToolDeclaration, build_tool, declaration_json, describe, parse_declaration
from tools.declared.http import HttpDeclaration
from tools.declared.mongo import MongoFindDeclaration, MongoUpdateOneDeclaration

__all__ = [
    "BUILTIN_DECLARATIONS",
    "ArgumentDeclaration",
    "DeclarationBase",
    "DeclaredToolResources",
    "HttpDeclaration",
    "MongoFindDeclaration",
    "MongoUpdateOneDeclaration",
    "ToolDeclaration",
    "build_tool",
    "builtin_declaration",
    "compile_arguments",
    "declaration_json",
    "describe",
    "parse_declaration",
    "refuse",
]
