package io.ringserve.model.template;

import io.ringserve.model.template.Node.Target;
import java.time.Clock;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Executes a parsed template. One instance per render; not thread-safe, not reused. */
final class Interpreter {
    /** jinja2's sandbox refuses larger ranges. */
    private static final long MAX_RANGE = 100_000;

    /** How a statement list ended: normally, or by {@code break}/{@code continue} leaving a loop body. */
    private enum Flow { NORMAL, BREAK, CONTINUE }

    /** Variables of one frame; jinja2 gives each loop iteration, macro call and with-block its own. */
    private static final class Scope {
        final Scope parent;
        final Map<String, Object> vars = new HashMap<>();

        Scope(Scope parent) {
            this.parent = parent;
        }
    }

    private final Clock clock;
    private final Map<String, Object> globals = new HashMap<>();

    Interpreter(Clock clock) {
        this.clock = clock;
        globals.put("range", (PyCallable) this::range);
        globals.put("dict", (PyCallable) (args, kwargs) -> {
            Map<Object, Object> out = new LinkedHashMap<>();
            for (Object arg : args) {
                mergeInto(out, arg, "dict");
            }
            out.putAll(kwargs);
            return out;
        });
        globals.put("namespace", (PyCallable) (args, kwargs) -> {
            Map<Object, Object> init = new LinkedHashMap<>();
            for (Object arg : args) {
                mergeInto(init, arg, "namespace");
            }
            init.putAll(kwargs);
            Namespace ns = new Namespace();
            init.forEach((k, v) -> ns.attributes.put(Values.str(k), v));
            return ns;
        });
        globals.put("raise_exception", (PyCallable) (args, kwargs) -> {
            throw TemplateException.raised(Values.str(new Args("raise_exception", args, kwargs).get(0, "message", "")));
        });
        globals.put("strftime_now", (PyCallable) (args, kwargs) -> Formats.strftime(
                Values.str(new Args("strftime_now", args, kwargs).required(0, "format")), LocalDateTime.now(this.clock)));
        globals.put("joiner", (PyCallable) (args, kwargs) -> {
            String sep = Values.str(new Args("joiner", args, kwargs).get(0, "sep", ", "));
            boolean[] used = {false};
            return (PyCallable) (a, k) -> {
                if (used[0]) {
                    return sep;
                }
                used[0] = true;
                return "";
            };
        });
    }

    String render(List<Node> body, Map<String, ?> variables) {
        Scope root = new Scope(null);
        if (variables != null) {
            variables.forEach((k, v) -> root.vars.put(k, Values.normalize(v)));
        }
        StringBuilder out = new StringBuilder();
        exec(body, root, out);
        return out.toString();
    }

    // ---------------------------------------------------------------- statements

    private Flow exec(List<Node> nodes, Scope scope, StringBuilder out) {
        for (Node node : nodes) {
            Flow flow = exec(node, scope, out);
            if (flow != Flow.NORMAL) {
                return flow;
            }
        }
        return Flow.NORMAL;
    }

    private Flow exec(Node node, Scope scope, StringBuilder out) {
        try {
            return switch (node) {
                case Node.Text t -> {
                    out.append(t.text());
                    yield Flow.NORMAL;
                }
                case Node.Output o -> {
                    out.append(Values.str(eval(o.expr(), scope)));
                    yield Flow.NORMAL;
                }
                case Node.If i -> {
                    for (Node.Branch branch : i.branches()) {
                        if (Values.truthy(eval(branch.condition(), scope))) {
                            yield exec(branch.body(), scope, out);
                        }
                    }
                    yield exec(i.otherwise(), scope, out);
                }
                case Node.For f -> runFor(f, Values.iterate(eval(f.iterable(), scope)), scope, out, 0);
                case Node.Set s -> {
                    assign(s.target(), eval(s.value(), scope), scope);
                    yield Flow.NORMAL;
                }
                case Node.SetBlock s -> {
                    StringBuilder captured = new StringBuilder();
                    exec(s.body(), new Scope(scope), captured);
                    assign(s.target(), applyFilters(s.filters(), captured.toString(), scope), scope);
                    yield Flow.NORMAL;
                }
                case Node.Macro m -> {
                    scope.vars.put(m.name(), macro(m.name(), m.params(), m.body(), scope));
                    yield Flow.NORMAL;
                }
                case Node.CallBlock c -> {
                    PyCallable caller = macro("caller", c.callerParams(), c.body(), scope);
                    Map<String, Object> extra = Map.of("caller", caller);
                    out.append(Values.str(call(c.call(), scope, extra)));
                    yield Flow.NORMAL;
                }
                case Node.FilterBlock f -> {
                    StringBuilder captured = new StringBuilder();
                    exec(f.body(), new Scope(scope), captured);
                    out.append(Values.str(applyFilters(f.filters(), captured.toString(), scope)));
                    yield Flow.NORMAL;
                }
                case Node.Scoped s -> {
                    Scope inner = new Scope(scope);
                    for (int k = 0; k < s.targets().size(); k++) {
                        assign(s.targets().get(k), eval(s.values().get(k), scope), inner);
                    }
                    yield exec(s.body(), inner, out);
                }
                case Node.Break b -> Flow.BREAK;
                case Node.Continue c -> Flow.CONTINUE;
            };
        } catch (TemplateException e) {
            throw e.atLine(lineOf(node));
        }
    }

    private static int lineOf(Node node) {
        return switch (node) {
            case Node.Text t -> 0;
            case Node.Output o -> o.line();
            case Node.If i -> i.line();
            case Node.For f -> f.line();
            case Node.Set s -> s.line();
            case Node.SetBlock s -> s.line();
            case Node.Macro m -> m.line();
            case Node.CallBlock c -> c.line();
            case Node.FilterBlock f -> f.line();
            case Node.Scoped s -> s.line();
            case Node.Break b -> b.line();
            case Node.Continue c -> c.line();
        };
    }

    private Flow runFor(Node.For f, List<Object> source, Scope scope, StringBuilder out, int depth) {
        List<Object> items = source;
        if (f.filter() != null) {
            // the loop filter sees the loop variables but not "loop" itself, and shapes loop.length
            items = new ArrayList<>();
            for (Object item : source) {
                Scope probe = new Scope(scope);
                assign(f.target(), item, probe);
                if (Values.truthy(eval(f.filter(), probe))) {
                    items.add(item);
                }
            }
        }
        if (items.isEmpty()) {
            return exec(f.otherwise(), new Scope(scope), out);
        }
        PyCallable recurse = !f.recursive() ? null : (args, kwargs) -> {
            StringBuilder nested = new StringBuilder();
            Object iterable = new Args("loop", args, kwargs).required(0, "iterable");
            runFor(f, Values.iterate(iterable), scope, nested, depth + 1);
            return nested.toString();
        };
        LoopContext loop = new LoopContext(items, depth, recurse);
        for (int i = 0; i < items.size(); i++) {
            loop.advanceTo(i);
            Scope iteration = new Scope(scope);
            assign(f.target(), items.get(i), iteration);
            iteration.vars.put("loop", loop);
            if (exec(f.body(), iteration, out) == Flow.BREAK) {
                break;
            }
        }
        return Flow.NORMAL;
    }

    private void assign(Target target, Object value, Scope scope) {
        switch (target) {
            case Target.Name n -> scope.vars.put(n.name(), value);
            case Target.Tuple t -> {
                List<Object> values = Values.iterate(value);
                if (values.size() != t.items().size()) {
                    throw new TemplateException(values.size() > t.items().size()
                            ? "too many values to unpack (expected " + t.items().size() + ")"
                            : "not enough values to unpack (expected " + t.items().size() + ", got " + values.size() + ")");
                }
                for (int i = 0; i < values.size(); i++) {
                    assign(t.items().get(i), values.get(i), scope);
                }
            }
            case Target.NamespaceAttr a -> {
                if (!(lookup(a.namespace(), scope) instanceof Namespace ns)) {
                    throw new TemplateException("cannot assign attribute on non-namespace object");
                }
                ns.attributes.put(a.attr(), value);
            }
        }
    }

    private PyCallable macro(String name, List<Node.Param> params, List<Node> body, Scope definedIn) {
        return new PyCallable() {
            @Override
            public Object call(List<Object> args, Map<String, Object> kwargs) {
                Scope frame = new Scope(definedIn);
                Map<String, Object> extraKwargs = new LinkedHashMap<>(kwargs);
                for (int i = 0; i < params.size(); i++) {
                    Node.Param p = params.get(i);
                    Object value;
                    if (i < args.size()) {
                        value = args.get(i);
                    } else if (extraKwargs.containsKey(p.name())) {
                        value = extraKwargs.remove(p.name());
                    } else if (p.defaultValue() != null) {
                        value = eval(p.defaultValue(), frame);
                    } else {
                        value = new Undefined("parameter '" + p.name() + "' was not provided");
                    }
                    frame.vars.put(p.name(), value);
                }
                if (extraKwargs.containsKey("caller")) {
                    frame.vars.put("caller", extraKwargs.remove("caller"));
                }
                List<Object> extraArgs = args.size() > params.size()
                        ? new ArrayList<>(args.subList(params.size(), args.size())) : new ArrayList<>();
                frame.vars.put("varargs", new PyTuple(extraArgs));
                frame.vars.put("kwargs", new LinkedHashMap<Object, Object>(extraKwargs));
                StringBuilder rendered = new StringBuilder();
                exec(body, frame, rendered);
                return rendered.toString();
            }

            @Override
            public String toString() {
                return "<Macro '" + name + "'>";
            }
        };
    }

    private Object applyFilters(List<Expr.FilterCall> filters, Object value, Scope scope) {
        for (Expr.FilterCall f : filters) {
            value = Filters.apply(f.name(), value, evalAll(f.args(), scope), evalKwargs(f.kwargs(), scope));
        }
        return value;
    }

    // ---------------------------------------------------------------- expressions

    private Object eval(Expr expr, Scope scope) {
        return switch (expr) {
            case Expr.Const c -> c.value();
            case Expr.Var v -> lookup(v.name(), scope);
            case Expr.ListLit l -> evalAll(l.items(), scope);
            case Expr.TupleLit t -> new PyTuple(evalAll(t.items(), scope));
            case Expr.DictLit d -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (int i = 0; i < d.keys().size(); i++) {
                    map.put(eval(d.keys().get(i), scope), eval(d.values().get(i), scope));
                }
                yield map;
            }
            case Expr.GetAttr g -> Values.getAttr(eval(g.obj(), scope), g.name());
            case Expr.GetItem g -> Values.getItem(eval(g.obj(), scope), eval(g.index(), scope));
            case Expr.Slice s -> Values.slice(eval(s.obj(), scope), evalOrNull(s.start(), scope),
                    evalOrNull(s.stop(), scope), evalOrNull(s.step(), scope));
            case Expr.Call c -> call(c, scope, Map.of());
            case Expr.Filter f -> applyFilters(List.of(f.call()), eval(f.value(), scope), scope);
            case Expr.Test t -> Tests.apply(t.name(), eval(t.value(), scope), evalAll(t.args(), scope),
                    evalKwargs(t.kwargs(), scope));
            case Expr.Not n -> !Values.truthy(eval(n.operand(), scope));
            case Expr.Neg n -> Values.negate(eval(n.operand(), scope));
            case Expr.Pos p -> Values.plus(eval(p.operand(), scope));
            case Expr.Binary b -> Values.binary(b.op(), eval(b.left(), scope), eval(b.right(), scope));
            case Expr.And a -> {
                Object left = eval(a.left(), scope);
                yield Values.truthy(left) ? eval(a.right(), scope) : left;
            }
            case Expr.Or o -> {
                Object left = eval(o.left(), scope);
                yield Values.truthy(left) ? left : eval(o.right(), scope);
            }
            case Expr.Compare c -> compare(c, scope);
            case Expr.Cond c -> {
                if (Values.truthy(eval(c.condition(), scope))) {
                    yield eval(c.then(), scope);
                }
                yield c.otherwise() != null ? eval(c.otherwise(), scope) : new Undefined("the inline if-expression on line "
                        + c.line() + " evaluated to false and no else section was defined.");
            }
        };
    }

    private Object evalOrNull(Expr expr, Scope scope) {
        return expr == null ? null : eval(expr, scope);
    }

    private List<Object> evalAll(List<Expr> exprs, Scope scope) {
        List<Object> out = new ArrayList<>(exprs.size());
        for (Expr e : exprs) {
            out.add(eval(e, scope));
        }
        return out;
    }

    private Map<String, Object> evalKwargs(List<Expr.Kwarg> kwargs, Scope scope) {
        if (kwargs.isEmpty()) {
            return Map.of();
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (Expr.Kwarg k : kwargs) {
            out.put(k.name(), eval(k.value(), scope));
        }
        return out;
    }

    private Object lookup(String name, Scope scope) {
        for (Scope s = scope; s != null; s = s.parent) {
            if (s.vars.containsKey(name)) {
                return s.vars.get(name);
            }
        }
        if (globals.containsKey(name)) {
            return globals.get(name);
        }
        return Undefined.variable(name);
    }

    private boolean compare(Expr.Compare c, Scope scope) {
        Object left = eval(c.first(), scope);
        for (Expr.Operand operand : c.rest()) {
            Object right = eval(operand.expr(), scope);
            boolean holds = switch (operand.op()) {
                case "==" -> Values.eq(left, right);
                case "!=" -> !Values.eq(left, right);
                case "<" -> Values.compare(left, right, "<") < 0;
                case "<=" -> Values.compare(left, right, "<=") <= 0;
                case ">" -> Values.compare(left, right, ">") > 0;
                case ">=" -> Values.compare(left, right, ">=") >= 0;
                case "in" -> Values.contains(right, left);
                case "notin" -> !Values.contains(right, left);
                default -> throw new IllegalStateException(operand.op());
            };
            if (!holds) {
                return false;
            }
            left = right;
        }
        return true;
    }

    private Object call(Expr.Call c, Scope scope, Map<String, Object> extraKwargs) {
        Object fn = eval(c.fn(), scope);
        List<Object> args = evalAll(c.args(), scope);
        if (c.star() != null) {
            args.addAll(Values.iterate(eval(c.star(), scope)));
        }
        Map<String, Object> kwargs = new LinkedHashMap<>(evalKwargs(c.kwargs(), scope));
        if (c.starStar() != null) {
            Object extra = eval(c.starStar(), scope);
            if (!(extra instanceof Map<?, ?> m)) {
                throw new TemplateException("argument after ** must be a mapping, not " + Values.typeName(extra));
            }
            m.forEach((k, v) -> kwargs.put(Values.str(k), v));
        }
        kwargs.putAll(extraKwargs);
        return switch (fn) {
            case PyCallable callable -> callable.call(args, kwargs);
            case Undefined u -> throw u.error();
            case null, default -> throw new TemplateException("'" + Values.typeName(fn) + "' object is not callable");
        };
    }

    // ---------------------------------------------------------------- globals

    private Object range(List<Object> args, Map<String, Object> kwargs) {
        Args a = new Args("range", args, kwargs);
        long start = 0;
        long stop;
        long step = 1;
        if (args.size() <= 1) {
            stop = a.integer(0, "stop", 0);
        } else {
            start = a.integer(0, "start", 0);
            stop = a.integer(1, "stop", 0);
            step = a.integer(2, "step", 1);
        }
        if (step == 0) {
            throw new TemplateException("range() arg 3 must not be zero");
        }
        List<Object> out = new ArrayList<>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (out.size() >= MAX_RANGE) {
                throw new TemplateException("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
            }
            out.add(i);
        }
        return out;
    }

    private static void mergeInto(Map<Object, Object> target, Object source, String function) {
        if (source instanceof Map<?, ?> m) {
            target.putAll(m);
            return;
        }
        for (Object pair : Values.iterate(source)) {
            List<Object> kv = Values.iterate(pair);
            if (kv.size() != 2) {
                throw new TemplateException(function + "() sequence elements must have length 2");
            }
            target.put(kv.get(0), kv.get(1));
        }
    }
}
