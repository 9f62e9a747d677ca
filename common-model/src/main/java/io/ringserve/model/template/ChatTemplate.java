package io.ringserve.model.template;

import java.time.Clock;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Hugging Face chat template ({@code tokenizer_config.json}'s {@code chat_template}), rendered as
 * transformers renders it: a sandboxed jinja2 environment with {@code trim_blocks},
 * {@code lstrip_blocks}, the {@code loopcontrols} extension, {@code tojson} as
 * {@code json.dumps(x, ensure_ascii=False)}, and the {@code raise_exception} and
 * {@code strftime_now} globals.
 *
 * <p>Compile once and render many times; instances are immutable and thread-safe.
 */
public final class ChatTemplate {
    private final String source;
    private final List<Node> body;

    private ChatTemplate(String source, List<Node> body) {
        this.source = source;
        this.body = body;
    }

    /**
     * Parses a template.
     *
     * @throws TemplateException of kind {@link TemplateException.Kind#SYNTAX} naming line and column
     */
    public static ChatTemplate compile(String source) {
        Objects.requireNonNull(source, "source");
        return new ChatTemplate(source, Parser.parse(source));
    }

    /**
     * Renders with the given variables: typically {@code messages} (a list of maps),
     * {@code add_generation_prompt}, {@code tools}, {@code bos_token}, {@code eos_token} and extra
     * keyword arguments such as {@code enable_thinking}. Values are plain Java: String, Boolean,
     * numbers, List, Map and null; the caller's objects are not modified.
     *
     * @throws TemplateException when jinja2 would fail, or when the template calls {@code raise_exception}
     */
    public String render(Map<String, ?> variables) {
        return render(variables, Clock.systemDefaultZone());
    }

    /**
     * Renders a conversation for generation, as transformers' {@code apply_chat_template(...,
     * add_generation_prompt=True)} does: the extra keyword arguments, then {@code messages}, the generation
     * prompt flag and the special tokens. A special token the tokenizer does not define stays undefined
     * (rendering as nothing), never None.
     *
     * @param kwargs   extra template variables (e.g. chat_template_kwargs); may be empty
     * @param bosToken null when the tokenizer has none
     * @param eosToken null when the tokenizer has none
     */
    public String renderConversation(List<? extends Map<String, ?>> messages, Map<String, ?> kwargs, String bosToken, String eosToken) {
        Map<String, Object> variables = new HashMap<>(kwargs);
        variables.put("messages", messages);
        variables.put("add_generation_prompt", true);
        if (bosToken != null) {
            variables.put("bos_token", bosToken);
        }
        if (eosToken != null) {
            variables.put("eos_token", eosToken);
        }
        return render(variables);
    }

    /** Renders with {@code strftime_now} reading the given clock. */
    String render(Map<String, ?> variables, Clock clock) {
        try {
            return new Interpreter(clock).render(body, variables);
        } catch (TemplateException e) {
            throw e;
        } catch (StackOverflowError e) {
            throw new TemplateException("maximum recursion depth exceeded while rendering", e);
        } catch (RuntimeException e) {
            throw new TemplateException(e.getClass().getSimpleName() + ": " + e.getMessage(), e);
        }
    }

    /** The template text this was compiled from. */
    public String source() {
        return source;
    }
}
