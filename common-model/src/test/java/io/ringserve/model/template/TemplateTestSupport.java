package io.ringserve.model.template;

import java.util.LinkedHashMap;
import java.util.Map;

/** Shared helpers: render a template with variables given as name/value pairs. */
final class TemplateTestSupport {
    private TemplateTestSupport() {
    }

    static String render(String template, Object... nameValuePairs) {
        return ChatTemplate.compile(template).render(vars(nameValuePairs));
    }

    static Map<String, Object> vars(Object... nameValuePairs) {
        Map<String, Object> vars = new LinkedHashMap<>();
        for (int i = 0; i < nameValuePairs.length; i += 2) {
            vars.put((String) nameValuePairs[i], nameValuePairs[i + 1]);
        }
        return vars;
    }
}
