package io.ringserve.model.template;

import io.ringserve.model.template.Expr.FilterCall;
import io.ringserve.model.template.Expr.Kwarg;
import io.ringserve.model.template.Node.Param;
import io.ringserve.model.template.Node.Target;
import io.ringserve.model.template.Token.Kind;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Recursive-descent parser following jinja2's grammar and operator precedence. */
final class Parser {
    private static final Set<String> COMPARE_OPS = Set.of("==", "!=", "<", "<=", ">", ">=");

    private final List<Token> tokens;
    private int pos;
    // break/continue are only valid inside a for body (macros reset it: they run outside the loop)
    private int loopDepth;

    private Parser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Node> parse(String source) {
        Parser parser = new Parser(Lexer.tokenize(source));
        List<Node> body = parser.subparse(Set.of(), null);
        parser.expect(Kind.EOF);
        return body;
    }

    // ---------------------------------------------------------------- statements

    /** Parses nodes until a block tag starting with one of {@code endTags}; stops on that name token. */
    private List<Node> subparse(Set<String> endTags, String innermost) {
        List<Node> body = new ArrayList<>();
        while (true) {
            Token t = current();
            switch (t.kind()) {
                case DATA -> {
                    body.add(new Node.Text(t.text()));
                    pos++;
                }
                case VAR_BEGIN -> {
                    pos++;
                    Expr expr = parseTuple(false, true, Set.of(), false);
                    expect(Kind.VAR_END);
                    body.add(new Node.Output(expr, t.line()));
                }
                case BLOCK_BEGIN -> {
                    pos++;
                    Token name = current();
                    if (name.kind() == Kind.NAME && endTags.contains(name.text())) {
                        return body;
                    }
                    body.add(parseStatement());
                    expect(Kind.BLOCK_END);
                }
                case EOF -> {
                    if (!endTags.isEmpty()) {
                        throw fail("Unexpected end of template. Jinja was looking for the following tags: "
                                + String.join(" or ", endTags.stream().sorted().map(s -> "'" + s + "'").toList())
                                + ". The innermost block that needs to be closed is '" + innermost + "'.", t);
                    }
                    return body;
                }
                default -> throw fail("unexpected " + t.describe(), t);
            }
        }
    }

    /** After a statement header: the block end, then the body up to one of {@code endTags}. */
    private List<Node> parseStatements(String innermost, String... endTags) {
        skipOp(":");
        expect(Kind.BLOCK_END);
        return subparse(Set.of(endTags), innermost);
    }

    private Node parseStatement() {
        Token t = current();
        if (t.kind() != Kind.NAME) {
            throw fail("tag name expected", t);
        }
        pos++;
        return switch (t.text()) {
            case "for" -> parseFor(t);
            case "if" -> parseIf(t);
            case "set" -> parseSet(t);
            case "macro" -> parseMacro(t);
            case "call" -> parseCallBlock(t);
            case "filter" -> parseFilterBlock(t);
            case "with" -> parseWith(t);
            case "generation" -> {
                // transformers' {% generation %} marks assistant text for masks; rendering is unchanged
                List<Node> body = parseStatements("generation", "endgeneration");
                pos++;
                yield new Node.Scoped(List.of(), List.of(), body, t.line());
            }
            case "break", "continue" -> {
                if (loopDepth == 0) {
                    throw fail("'" + t.text() + "' outside loop", t);
                }
                yield t.text().equals("break") ? new Node.Break(t.line()) : new Node.Continue(t.line());
            }
            default -> throw fail("Encountered unknown tag '" + t.text() + "'.", t);
        };
    }

    private Node parseFor(Token start) {
        Target target = parseAssignTarget(false, Set.of("in"));
        expectName("in");
        Expr iterable = parseTuple(false, false, Set.of("recursive"), false);
        Expr filter = null;
        if (skipName("if")) {
            filter = parseExpression(true);
        }
        boolean recursive = skipName("recursive");
        loopDepth++;
        List<Node> body = parseStatements("for", "endfor", "else");
        loopDepth--;
        List<Node> otherwise = List.of();
        if (next().text().equals("else")) {
            otherwise = parseStatements("for", "endfor");
            pos++;
        }
        return new Node.For(target, iterable, filter, recursive, body, otherwise, start.line());
    }

    private Node parseIf(Token start) {
        List<Node.Branch> branches = new ArrayList<>();
        List<Node> otherwise = List.of();
        while (true) {
            Expr condition = parseTuple(false, false, Set.of(), false);
            List<Node> body = parseStatements("if", "elif", "else", "endif");
            branches.add(new Node.Branch(condition, body));
            String tag = next().text();
            if (tag.equals("elif")) {
                continue;
            }
            if (tag.equals("else")) {
                otherwise = parseStatements("if", "endif");
                pos++;
            }
            break;
        }
        return new Node.If(List.copyOf(branches), otherwise, start.line());
    }

    private Node parseSet(Token start) {
        Target target = parseAssignTarget(true, Set.of());
        if (skipOp("=")) {
            return new Node.Set(target, parseTuple(false, true, Set.of(), false), start.line());
        }
        List<FilterCall> filters = current().isOp("|") ? parseFilterCalls(false) : List.of();
        List<Node> body = parseStatements("set", "endset");
        pos++;
        return new Node.SetBlock(target, filters, body, start.line());
    }

    private Node parseMacro(Token start) {
        String name = expect(Kind.NAME).text();
        List<Param> params = parseSignature();
        int savedDepth = loopDepth;
        loopDepth = 0;
        List<Node> body = parseStatements("macro", "endmacro");
        loopDepth = savedDepth;
        pos++;
        return new Node.Macro(name, params, body, start.line());
    }

    private Node parseCallBlock(Token start) {
        List<Param> params = current().isOp("(") ? parseSignature() : List.of();
        Token at = current();
        Expr call = parseExpression(true);
        if (!(call instanceof Expr.Call c)) {
            throw fail("expected call", at);
        }
        int savedDepth = loopDepth;
        loopDepth = 0;
        List<Node> body = parseStatements("call", "endcall");
        loopDepth = savedDepth;
        pos++;
        return new Node.CallBlock(c, params, body, start.line());
    }

    private Node parseFilterBlock(Token start) {
        List<FilterCall> filters = parseFilterCalls(true);
        List<Node> body = parseStatements("filter", "endfilter");
        pos++;
        return new Node.FilterBlock(filters, body, start.line());
    }

    private Node parseWith(Token start) {
        List<Target> targets = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        while (current().kind() != Kind.BLOCK_END) {
            if (!targets.isEmpty()) {
                expectOp(",");
            }
            targets.add(parseAssignTarget(false, Set.of()));
            expectOp("=");
            values.add(parseExpression(true));
        }
        List<Node> body = parseStatements("with", "endwith");
        pos++;
        return new Node.Scoped(List.copyOf(targets), List.copyOf(values), body, start.line());
    }

    private List<Param> parseSignature() {
        List<Param> params = new ArrayList<>();
        expectOp("(");
        while (!current().isOp(")")) {
            if (!params.isEmpty()) {
                expectOp(",");
            }
            String name = expect(Kind.NAME).text();
            Expr def = skipOp("=") ? parseExpression(true) : null;
            params.add(new Param(name, def));
        }
        expectOp(")");
        return List.copyOf(params);
    }

    private Target parseAssignTarget(boolean withNamespace, Set<String> extraEnd) {
        Token t = current();
        if (withNamespace && t.kind() == Kind.NAME && peek(1).isOp(".")) {
            pos += 2;
            return new Target.NamespaceAttr(t.text(), expect(Kind.NAME).text());
        }
        return toTarget(parseTuple(true, true, extraEnd, false), t);
    }

    private Target toTarget(Expr expr, Token at) {
        return switch (expr) {
            case Expr.Var v -> {
                if (Set.of("true", "false", "none", "True", "False", "None").contains(v.name())) {
                    throw fail("can't assign to '" + v.name() + "'", at);
                }
                yield new Target.Name(v.name());
            }
            case Expr.TupleLit tl -> new Target.Tuple(tl.items().stream().map(e -> toTarget(e, at)).toList());
            default -> throw fail("can't assign to " + expr.getClass().getSimpleName().toLowerCase(), at);
        };
    }

    // ---------------------------------------------------------------- expressions

    private Expr parseTuple(boolean simplified, boolean withCondexpr, Set<String> extraEnd, boolean explicitParens) {
        List<Expr> items = new ArrayList<>();
        boolean isTuple = false;
        while (true) {
            if (!items.isEmpty()) {
                expectOp(",");
            }
            if (isTupleEnd(extraEnd)) {
                break;
            }
            items.add(simplified ? parsePrimary() : parseExpression(withCondexpr));
            if (current().isOp(",")) {
                isTuple = true;
            } else {
                break;
            }
        }
        if (!isTuple) {
            if (!items.isEmpty()) {
                return items.getFirst();
            }
            if (!explicitParens) {
                throw fail("Expected an expression, got " + current().describe(), current());
            }
        }
        return new Expr.TupleLit(List.copyOf(items));
    }

    private boolean isTupleEnd(Set<String> extraEnd) {
        Token t = current();
        return t.kind() == Kind.VAR_END || t.kind() == Kind.BLOCK_END || t.isOp(")")
                || (t.kind() == Kind.NAME && extraEnd.contains(t.text()));
    }

    private Expr parseExpression(boolean withCondexpr) {
        return withCondexpr ? parseCondexpr() : parseOr();
    }

    private Expr parseCondexpr() {
        Expr expr = parseOr();
        while (current().isName("if")) {
            int line = next().line();
            Expr condition = parseOr();
            Expr otherwise = skipName("else") ? parseCondexpr() : null;
            expr = new Expr.Cond(condition, expr, otherwise, line);
        }
        return expr;
    }

    private Expr parseOr() {
        Expr left = parseAnd();
        while (skipName("or")) {
            left = new Expr.Or(left, parseAnd());
        }
        return left;
    }

    private Expr parseAnd() {
        Expr left = parseNot();
        while (skipName("and")) {
            left = new Expr.And(left, parseNot());
        }
        return left;
    }

    private Expr parseNot() {
        if (skipName("not")) {
            return new Expr.Not(parseNot());
        }
        return parseCompare();
    }

    private Expr parseCompare() {
        Expr first = parseMath1();
        List<Expr.Operand> rest = new ArrayList<>();
        while (true) {
            Token t = current();
            if (t.kind() == Kind.OPERATOR && COMPARE_OPS.contains(t.text())) {
                pos++;
                rest.add(new Expr.Operand(t.text(), parseMath1()));
            } else if (skipName("in")) {
                rest.add(new Expr.Operand("in", parseMath1()));
            } else if (t.isName("not") && peek(1).isName("in")) {
                pos += 2;
                rest.add(new Expr.Operand("notin", parseMath1()));
            } else {
                break;
            }
        }
        return rest.isEmpty() ? first : new Expr.Compare(first, List.copyOf(rest));
    }

    private Expr parseMath1() {
        Expr left = parseConcat();
        while (current().isOp("+") || current().isOp("-")) {
            String op = next().text();
            left = new Expr.Binary(op, left, parseConcat());
        }
        return left;
    }

    private Expr parseConcat() {
        Expr left = parseMath2();
        while (skipOp("~")) {
            left = new Expr.Binary("~", left, parseMath2());
        }
        return left;
    }

    private Expr parseMath2() {
        Expr left = parsePow();
        while (current().isOp("*") || current().isOp("/") || current().isOp("//") || current().isOp("%")) {
            String op = next().text();
            left = new Expr.Binary(op, left, parsePow());
        }
        return left;
    }

    private Expr parsePow() {
        // jinja2 makes ** left-associative, unlike Python
        Expr left = parseUnary(true);
        while (skipOp("**")) {
            left = new Expr.Binary("**", left, parseUnary(true));
        }
        return left;
    }

    private Expr parseUnary(boolean withFilter) {
        Expr node;
        if (skipOp("-")) {
            node = new Expr.Neg(parseUnary(false));
        } else if (skipOp("+")) {
            node = new Expr.Pos(parseUnary(false));
        } else {
            node = parsePrimary();
        }
        node = parsePostfix(node);
        return withFilter ? parseFilterExpr(node) : node;
    }

    private Expr parsePrimary() {
        Token t = current();
        switch (t.kind()) {
            case NAME -> {
                pos++;
                return switch (t.text()) {
                    case "true", "True" -> new Expr.Const(Boolean.TRUE);
                    case "false", "False" -> new Expr.Const(Boolean.FALSE);
                    case "none", "None" -> new Expr.Const(null);
                    default -> new Expr.Var(t.text());
                };
            }
            case STRING -> {
                StringBuilder s = new StringBuilder();
                while (current().kind() == Kind.STRING) {
                    s.append((String) next().value());
                }
                return new Expr.Const(s.toString());
            }
            case INTEGER, FLOAT -> {
                pos++;
                return new Expr.Const(t.value());
            }
            case OPERATOR -> {
                switch (t.text()) {
                    case "(" -> {
                        pos++;
                        Expr inner = parseTuple(false, true, Set.of(), true);
                        expectOp(")");
                        return inner;
                    }
                    case "[" -> {
                        return parseList();
                    }
                    case "{" -> {
                        return parseDict();
                    }
                    default -> throw fail("unexpected '" + t.text() + "'", t);
                }
            }
            default -> throw fail("unexpected " + t.describe(), t);
        }
    }

    private Expr parseList() {
        expectOp("[");
        List<Expr> items = new ArrayList<>();
        while (!current().isOp("]")) {
            if (!items.isEmpty()) {
                expectOp(",");
            }
            if (current().isOp("]")) {
                break;
            }
            items.add(parseExpression(true));
        }
        expectOp("]");
        return new Expr.ListLit(List.copyOf(items));
    }

    private Expr parseDict() {
        expectOp("{");
        List<Expr> keys = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        while (!current().isOp("}")) {
            if (!keys.isEmpty()) {
                expectOp(",");
            }
            if (current().isOp("}")) {
                break;
            }
            keys.add(parseExpression(true));
            expectOp(":");
            values.add(parseExpression(true));
        }
        expectOp("}");
        return new Expr.DictLit(List.copyOf(keys), List.copyOf(values));
    }

    private Expr parsePostfix(Expr node) {
        while (true) {
            Token t = current();
            if (t.isOp(".") || t.isOp("[")) {
                node = parseSubscript(node);
            } else if (t.isOp("(")) {
                node = parseCall(node);
            } else {
                return node;
            }
        }
    }

    private Expr parseFilterExpr(Expr node) {
        while (true) {
            Token t = current();
            if (t.isOp("|")) {
                for (FilterCall f : parseFilterCalls(false)) {
                    node = new Expr.Filter(node, f);
                }
            } else if (t.isName("is")) {
                node = parseTest(node);
            } else if (t.isOp("(")) {
                node = parseCall(node);
            } else {
                return node;
            }
        }
    }

    private Expr parseSubscript(Expr node) {
        Token t = next();
        if (t.isOp(".")) {
            Token attr = next();
            if (attr.kind() == Kind.NAME) {
                return new Expr.GetAttr(node, attr.text());
            }
            if (attr.kind() == Kind.INTEGER) {
                return new Expr.GetItem(node, new Expr.Const(attr.value()));
            }
            throw fail("expected name or number", attr);
        }
        List<Expr> args = new ArrayList<>();
        Expr[] slice = null;
        while (!current().isOp("]")) {
            if (!args.isEmpty() || slice != null) {
                expectOp(",");
            }
            Token at = current();
            Object sub = parseSubscribed();
            if (sub instanceof Expr[] parts) {
                if (!args.isEmpty() || slice != null) {
                    throw fail("multi-dimensional slices are not supported", at);
                }
                slice = parts;
            } else {
                if (slice != null) {
                    throw fail("multi-dimensional slices are not supported", at);
                }
                args.add((Expr) sub);
            }
        }
        expectOp("]");
        if (slice != null) {
            return new Expr.Slice(node, slice[0], slice[1], slice[2]);
        }
        if (args.isEmpty()) {
            throw fail("expected subscript expression", current());
        }
        return new Expr.GetItem(node, args.size() == 1 ? args.getFirst() : new Expr.TupleLit(List.copyOf(args)));
    }

    /** An index expression, or a {start, stop, step} array for a slice. */
    private Object parseSubscribed() {
        Expr[] parts = new Expr[3];
        if (skipOp(":")) {
            parts[0] = null;
        } else {
            Expr node = parseExpression(true);
            if (!skipOp(":")) {
                return node;
            }
            parts[0] = node;
        }
        if (!current().isOp(":") && !current().isOp("]") && !current().isOp(",")) {
            parts[1] = parseExpression(true);
        }
        if (skipOp(":") && !current().isOp("]") && !current().isOp(",")) {
            parts[2] = parseExpression(true);
        }
        return parts;
    }

    private Expr.Call parseCall(Expr fn) {
        CallArgs a = parseCallArgs();
        return new Expr.Call(fn, a.args, a.kwargs, a.star, a.starStar);
    }

    private record CallArgs(List<Expr> args, List<Kwarg> kwargs, Expr star, Expr starStar) { }

    private CallArgs parseCallArgs() {
        expectOp("(");
        List<Expr> args = new ArrayList<>();
        List<Kwarg> kwargs = new ArrayList<>();
        Expr star = null;
        Expr starStar = null;
        boolean first = true;
        while (!current().isOp(")")) {
            if (!first) {
                expectOp(",");
                if (current().isOp(")")) {
                    break;
                }
            }
            first = false;
            Token t = current();
            if (skipOp("*")) {
                star = parseExpression(true);
            } else if (skipOp("**")) {
                starStar = parseExpression(true);
            } else if (t.kind() == Kind.NAME && peek(1).isOp("=")) {
                pos += 2;
                kwargs.add(new Kwarg(t.text(), parseExpression(true)));
            } else {
                if (!kwargs.isEmpty() || starStar != null) {
                    throw fail("invalid syntax for function call expression", t);
                }
                args.add(parseExpression(true));
            }
        }
        expectOp(")");
        return new CallArgs(List.copyOf(args), List.copyOf(kwargs), star, starStar);
    }

    /** One or more {@code | name(args)}; with {@code inline} the first has no leading pipe. */
    private List<FilterCall> parseFilterCalls(boolean inline) {
        List<FilterCall> calls = new ArrayList<>();
        while (inline || current().isOp("|")) {
            if (!inline) {
                pos++;
            }
            inline = false;
            StringBuilder name = new StringBuilder(expect(Kind.NAME).text());
            while (skipOp(".")) {
                name.append('.').append(expect(Kind.NAME).text());
            }
            List<Expr> args = List.of();
            List<Kwarg> kwargs = List.of();
            if (current().isOp("(")) {
                Token at = current();
                CallArgs a = parseCallArgs();
                if (a.star != null || a.starStar != null) {
                    throw fail("*args and **kwargs are not supported in filter calls", at);
                }
                args = a.args;
                kwargs = a.kwargs;
            }
            calls.add(new FilterCall(name.toString(), args, kwargs));
        }
        return calls;
    }

    private Expr parseTest(Expr node) {
        pos++;
        boolean negated = skipName("not");
        StringBuilder name = new StringBuilder(expect(Kind.NAME).text());
        while (skipOp(".")) {
            name.append('.').append(expect(Kind.NAME).text());
        }
        List<Expr> args = List.of();
        List<Kwarg> kwargs = List.of();
        Token t = current();
        if (t.isOp("(")) {
            CallArgs a = parseCallArgs();
            args = a.args;
            kwargs = a.kwargs;
        } else if ((t.kind() == Kind.NAME || t.kind() == Kind.STRING || t.kind() == Kind.INTEGER
                || t.kind() == Kind.FLOAT || t.isOp("[") || t.isOp("{"))
                && !t.isName("else") && !t.isName("or") && !t.isName("and")) {
            if (t.isName("is")) {
                throw fail("You cannot chain multiple tests with is", t);
            }
            args = List.of(parsePostfix(parsePrimary()));
        }
        Expr test = new Expr.Test(node, name.toString(), args, kwargs);
        return negated ? new Expr.Not(test) : test;
    }

    // ---------------------------------------------------------------- token helpers

    private Token current() {
        return tokens.get(pos);
    }

    private Token peek(int ahead) {
        return tokens.get(Math.min(pos + ahead, tokens.size() - 1));
    }

    private Token next() {
        Token t = tokens.get(pos);
        if (t.kind() != Kind.EOF) {
            pos++;
        }
        return t;
    }

    private boolean skipName(String name) {
        if (current().isName(name)) {
            pos++;
            return true;
        }
        return false;
    }

    private boolean skipOp(String op) {
        if (current().isOp(op)) {
            pos++;
            return true;
        }
        return false;
    }

    private Token expect(Kind kind) {
        Token t = current();
        if (t.kind() != kind) {
            String wanted = kind == Kind.NAME ? "name" : new Token(kind, "", null, 0, 0).describe();
            throw fail("expected token '" + wanted + "', got " + t.describe(), t);
        }
        return next();
    }

    private Token expectOp(String op) {
        Token t = current();
        if (!t.isOp(op)) {
            throw fail("expected token '" + op + "', got " + t.describe(), t);
        }
        return next();
    }

    private void expectName(String name) {
        Token t = current();
        if (!t.isName(name)) {
            throw fail("expected token '" + name + "', got " + t.describe(), t);
        }
        pos++;
    }

    private TemplateException fail(String message, Token at) {
        return TemplateException.syntax(message, at.line(), at.column());
    }
}
