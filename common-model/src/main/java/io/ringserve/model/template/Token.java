package io.ringserve.model.template;

/**
 * One lexical token. {@code value} holds the decoded literal for strings and numbers and the
 * text for everything else; line and column (1-based) locate it for error messages.
 */
record Token(Kind kind, String text, Object value, int line, int column) {

    enum Kind { DATA, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INTEGER, FLOAT, OPERATOR, EOF }

    boolean is(Kind k, String t) {
        return kind == k && text.equals(t);
    }

    boolean isName(String name) {
        return is(Kind.NAME, name);
    }

    boolean isOp(String op) {
        return is(Kind.OPERATOR, op);
    }

    /** How jinja2 describes the token in "expected X, got Y" messages. */
    String describe() {
        return switch (kind) {
            case DATA -> "template data / text";
            case VAR_BEGIN -> "begin of print statement";
            case VAR_END -> "end of print statement";
            case BLOCK_BEGIN -> "begin of statement block";
            case BLOCK_END -> "end of statement block";
            case EOF -> "end of template";
            case STRING -> "string";
            case INTEGER -> "integer";
            case FLOAT -> "float";
            case NAME, OPERATOR -> "'" + text + "'";
        };
    }
}
