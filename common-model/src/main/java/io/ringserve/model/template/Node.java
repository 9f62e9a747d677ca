package io.ringserve.model.template;

import java.util.List;

/** A template statement. {@code line} is where it starts, for render error messages. */
sealed interface Node {

    /** Literal template text. */
    record Text(String text) implements Node { }

    /** {@code {{ expr }}}. */
    record Output(Expr expr, int line) implements Node { }

    /** {@code if / elif / else}; {@code otherwise} is empty when there is no else. */
    record If(List<Branch> branches, List<Node> otherwise, int line) implements Node { }

    record Branch(Expr condition, List<Node> body) { }

    /** {@code for target in iterable [if filter] [recursive] ... [else ...] endfor}. */
    record For(Target target, Expr iterable, Expr filter, boolean recursive, List<Node> body,
               List<Node> otherwise, int line) implements Node { }

    /** {@code set target = value}. */
    record Set(Target target, Expr value, int line) implements Node { }

    /** {@code set target [| filters] ... endset}: captures the rendered body as a string. */
    record SetBlock(Target target, List<Expr.FilterCall> filters, List<Node> body, int line) implements Node { }

    /** {@code macro name(params) ... endmacro}. */
    record Macro(String name, List<Param> params, List<Node> body, int line) implements Node { }

    /** {@code call[(params)] expr ... endcall}: the body becomes the {@code caller} macro. */
    record CallBlock(Expr.Call call, List<Param> callerParams, List<Node> body, int line) implements Node { }

    /** {@code filter f ... endfilter}. */
    record FilterBlock(List<Expr.FilterCall> filters, List<Node> body, int line) implements Node { }

    /** {@code with a = x, b = y ... endwith} and other bodies that run in their own scope. */
    record Scoped(List<Target> targets, List<Expr> values, List<Node> body, int line) implements Node { }

    record Break(int line) implements Node { }

    record Continue(int line) implements Node { }

    /** A macro parameter; {@code defaultValue} is null when it has none. */
    record Param(String name, Expr defaultValue) { }

    /** The left side of an assignment or a for loop. */
    sealed interface Target {
        record Name(String name) implements Target { }

        record Tuple(List<Target> items) implements Target { }

        /** {@code ns.attr}, only valid on a namespace object. */
        record NamespaceAttr(String namespace, String attr) implements Target { }
    }
}
