package io.ringserve.model.template;

import java.util.List;

/** A template expression. */
sealed interface Expr {

    record Const(Object value) implements Expr { }

    record Var(String name) implements Expr { }

    record ListLit(List<Expr> items) implements Expr { }

    record TupleLit(List<Expr> items) implements Expr { }

    record DictLit(List<Expr> keys, List<Expr> values) implements Expr { }

    /** {@code obj.name}. */
    record GetAttr(Expr obj, String name) implements Expr { }

    /** {@code obj[index]}. */
    record GetItem(Expr obj, Expr index) implements Expr { }

    /** {@code obj[start:stop:step]}; absent parts are null. */
    record Slice(Expr obj, Expr start, Expr stop, Expr step) implements Expr { }

    /** {@code fn(args, name=value, *star, **starStar)}; star parts are null when absent. */
    record Call(Expr fn, List<Expr> args, List<Kwarg> kwargs, Expr star, Expr starStar) implements Expr { }

    /** {@code value | name(args)}. */
    record Filter(Expr value, FilterCall call) implements Expr { }

    /** {@code value is name(args)}; negation is a surrounding {@link Not}. */
    record Test(Expr value, String name, List<Expr> args, List<Kwarg> kwargs) implements Expr { }

    record Not(Expr operand) implements Expr { }

    record Neg(Expr operand) implements Expr { }

    record Pos(Expr operand) implements Expr { }

    /** Arithmetic and {@code ~}; op is the operator text. */
    record Binary(String op, Expr left, Expr right) implements Expr { }

    record And(Expr left, Expr right) implements Expr { }

    record Or(Expr left, Expr right) implements Expr { }

    /** A (possibly chained) comparison: {@code first op1 e1 op2 e2 ...}. */
    record Compare(Expr first, List<Operand> rest) implements Expr { }

    /** ops: {@code == != < <= > >= in notin}. */
    record Operand(String op, Expr expr) { }

    /** {@code then if condition else otherwise}; {@code otherwise} is null without an else. */
    record Cond(Expr condition, Expr then, Expr otherwise, int line) implements Expr { }

    record Kwarg(String name, Expr value) { }

    /** A filter name with its arguments, also used by filter blocks and block sets. */
    record FilterCall(String name, List<Expr> args, List<Kwarg> kwargs) { }
}
