package io.ringserve.model.template;

/**
 * A chat template could not be compiled or rendered.
 *
 * <p>Three kinds exist: a {@link Kind#SYNTAX syntax} error found by {@link ChatTemplate#compile},
 * a {@link Kind#RENDER render} error (a type error, an undefined value used where jinja2 would
 * fail, ...) and an error the template {@link Kind#RAISED raised itself} with
 * {@code raise_exception(msg)}. The message always says it came from the chat template;
 * {@link #detail()} gives the bare text, which for a raised error is exactly the template's message.
 */
public final class TemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** What kind of failure this is. */
    public enum Kind {
        /** The template source is not valid. */
        SYNTAX,
        /** Rendering failed where jinja2 would raise as well. */
        RENDER,
        /** The template called {@code raise_exception}. */
        RAISED
    }

    private final Kind kind;
    private final String detail;
    private final int line;
    private final int column;

    private TemplateException(Kind kind, String detail, int line, int column, Throwable cause) {
        super(format(kind, detail, line, column), cause);
        this.kind = kind;
        this.detail = detail;
        this.line = line;
        this.column = column;
    }

    /** A render error without a known location. */
    public TemplateException(String detail) {
        this(Kind.RENDER, detail, 0, 0, null);
    }

    /** A render error caused by another exception. */
    public TemplateException(String detail, Throwable cause) {
        this(Kind.RENDER, detail, 0, 0, cause);
    }

    static TemplateException syntax(String detail, int line, int column) {
        return new TemplateException(Kind.SYNTAX, detail, line, column, null);
    }

    static TemplateException raised(String message) {
        return new TemplateException(Kind.RAISED, message, 0, 0, null);
    }

    /** The same render error, now naming the template line it happened on (if not known yet). */
    TemplateException atLine(int atLine) {
        if (kind != Kind.RENDER || line != 0 || atLine <= 0) {
            return this;
        }
        return new TemplateException(Kind.RENDER, detail, atLine, 0, getCause() == null ? this : getCause());
    }

    private static String format(Kind kind, String detail, int line, int column) {
        return switch (kind) {
            case SYNTAX -> "Chat template syntax error at line " + line + ", column " + column + ": " + detail;
            case RAISED -> "Chat template error: " + detail;
            case RENDER -> line > 0
                    ? "Chat template render error at line " + line + ": " + detail
                    : "Chat template render error: " + detail;
        };
    }

    /** The kind of failure. */
    public Kind kind() {
        return kind;
    }

    /** The message without the "chat template" prefix; for {@link Kind#RAISED} exactly what the template passed. */
    public String detail() {
        return detail;
    }

    /** 1-based template line, or 0 when unknown. */
    public int line() {
        return line;
    }

    /** 1-based column for syntax errors, or 0 when unknown. */
    public int column() {
        return column;
    }
}
