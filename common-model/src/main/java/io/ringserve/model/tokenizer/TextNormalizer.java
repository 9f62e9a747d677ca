package io.ringserve.model.tokenizer;

import java.text.Normalizer;
import java.util.List;

/** The {@code normalizer} stage: text to text, applied to each plain-text segment. */
interface TextNormalizer {

    /** Leaves text unchanged (no {@code normalizer} in the file). */
    TextNormalizer IDENTITY = text -> text;

    String normalize(String text);

    /** A Unicode normalization form (NFC, NFD, NFKC, NFKD). */
    record UnicodeForm(Normalizer.Form form) implements TextNormalizer {
        @Override
        public String normalize(String text) {
            // the quick check makes already-normalized text (the common case) nearly free
            return Normalizer.isNormalized(text, form) ? text : Normalizer.normalize(text, form);
        }
    }

    /** Several normalizers applied in order. */
    record Sequence(List<TextNormalizer> steps) implements TextNormalizer {
        @Override
        public String normalize(String text) {
            for (TextNormalizer step : steps) {
                text = step.normalize(text);
            }
            return text;
        }
    }

    /** Builds the normalizer described by {@code json}, or {@link #IDENTITY} for null. */
    static TextNormalizer parse(JsonCursor json) {
        if (json == null) {
            return IDENTITY;
        }
        JsonCursor type = json.required("type");
        return switch (type.string()) {
            case "NFC" -> new UnicodeForm(Normalizer.Form.NFC);
            case "NFD" -> new UnicodeForm(Normalizer.Form.NFD);
            case "NFKC" -> new UnicodeForm(Normalizer.Form.NFKC);
            case "NFKD" -> new UnicodeForm(Normalizer.Form.NFKD);
            case "Sequence" -> new Sequence(json.required("normalizers").elements().stream()
                    .map(TextNormalizer::parse).toList());
            default -> throw type.error("unsupported normalizer type \"" + type.string()
                    + "\" (supported: NFC, NFD, NFKC, NFKD, Sequence)");
        };
    }
}
