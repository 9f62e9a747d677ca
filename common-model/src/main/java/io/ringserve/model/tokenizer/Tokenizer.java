package io.ringserve.model.tokenizer;

import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A Hugging Face {@code tokenizer.json} tokenizer (byte-level BPE) that encodes and decodes exactly
 * like the reference {@code tokenizers} library for the pipelines it supports:
 * <ol>
 *   <li>added tokens are found in the raw text first, so special tokens are never normalized or split;</li>
 *   <li>each remaining segment is normalized (e.g. NFC) on its own &mdash; normalizing before the
 *       added-token split could change the text of a special token or merge characters across its
 *       boundary;</li>
 *   <li>the pre-tokenizer (Split regex, ByteLevel) cuts it into words;</li>
 *   <li>the BPE model turns each word into ids.</li>
 * </ol>
 * Decoding maps tokens back to bytes through the ByteLevel decoder and decodes UTF-8 lossily.
 * The post-processor is not applied: {@link #encode} matches {@code encode(text, add_special_tokens=False)}.
 * <p>Instances are immutable apart from an internal word cache and are safe to share between threads.
 */
public final class Tokenizer {

    private final String sha256;
    private final AddedVocabulary rawAddedTokens;
    private final AddedVocabulary normalizedAddedTokens;
    private final TextNormalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final BpeModel model;
    private final Map<String, Integer> addedTokenIds;
    private final String[] idToToken;
    private final byte[][] tokenBytes;
    private final boolean[] special;

    private Tokenizer(String sha256, List<AddedToken> added, TextNormalizer normalizer, PreTokenizer preTokenizer,
                      BpeModel model) {
        this.sha256 = sha256;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.rawAddedTokens = AddedVocabulary.of(added, false, normalizer);
        this.normalizedAddedTokens = AddedVocabulary.of(added, true, normalizer);
        int size = model.idToToken().length;
        for (AddedToken t : added) {
            size = Math.max(size, t.id() + 1);
        }
        idToToken = java.util.Arrays.copyOf(model.idToToken(), size);
        special = new boolean[size];
        addedTokenIds = new HashMap<>();
        for (AddedToken t : added) {
            // an added token takes precedence over a model token with the same id or text
            idToToken[t.id()] = t.content();
            special[t.id()] = t.special();
            addedTokenIds.put(t.content(), t.id());
        }
        tokenBytes = new byte[size][];
        for (int id = 0; id < size; id++) {
            if (idToToken[id] != null) {
                tokenBytes[id] = ByteLevel.decodeToken(idToToken[id]);
            }
        }
    }

    /**
     * Loads a {@code tokenizer.json} file.
     *
     * @throws java.io.UncheckedIOException if the file is missing or unreadable
     * @throws IllegalArgumentException     if it is not valid JSON or describes an unsupported or
     *                                      inconsistent tokenizer; the message names the file and the key
     */
    public static Tokenizer load(Path tokenizerJson) {
        byte[] bytes = JsonCursor.readBytes(tokenizerJson, "Tokenizer file");
        JsonCursor root = JsonCursor.parse(tokenizerJson, bytes);

        TextNormalizer normalizer = TextNormalizer.parse(root.optional("normalizer"));
        PreTokenizer preTokenizer = PreTokenizer.parse(root.optional("pre_tokenizer"));
        BpeModel model = BpeModel.parse(root.required("model"));
        JsonCursor decoder = root.required("decoder");
        JsonCursor decoderType = decoder.required("type");
        if (!decoderType.string().equals("ByteLevel")) {
            throw decoderType.error("unsupported decoder type \"" + decoderType.string() + "\" (supported: ByteLevel)");
        }
        List<AddedToken> added = new ArrayList<>();
        JsonCursor addedJson = root.optional("added_tokens");
        if (addedJson != null) {
            for (JsonCursor t : addedJson.elements()) {
                added.add(AddedToken.parse(t));
            }
        }
        return new Tokenizer(sha256(bytes), added, normalizer, preTokenizer, model);
    }

    /** Loads {@code modelDir/tokenizer.json}; see {@link #load(Path)}. */
    public static Tokenizer fromDirectory(Path modelDir) {
        return load(modelDir.resolve("tokenizer.json"));
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required on every Java platform", e);
        }
    }

    /**
     * Encodes text to ids. Added and special tokens written in the text are recognised; no
     * BOS/EOS or other template tokens are added.
     */
    public int[] encode(String text) {
        IntArrayBuilder out = new IntArrayBuilder(text.length() / 3 + 8);
        for (AddedVocabulary.Segment raw : rawAddedTokens.split(text)) {
            if (raw.isToken()) {
                out.add(raw.tokenId());
                continue;
            }
            String normalized = normalizer.normalize(raw.text());
            for (AddedVocabulary.Segment segment : normalizedAddedTokens.split(normalized)) {
                if (segment.isToken()) {
                    out.add(segment.tokenId());
                } else {
                    preTokenizer.split(segment.text(), word -> model.tokenize(word, out));
                }
            }
        }
        return out.toArray();
    }

    /**
     * Decodes ids to text. Ids that name no token are ignored, as the reference does.
     *
     * @param skipSpecialTokens leave out added tokens marked special
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        int length = 0;
        for (int id : ids) {
            byte[] b = bytesForDecode(id, skipSpecialTokens);
            length += b == null ? 0 : b.length;
        }
        byte[] all = new byte[length];
        int pos = 0;
        for (int id : ids) {
            byte[] b = bytesForDecode(id, skipSpecialTokens);
            if (b != null) {
                System.arraycopy(b, 0, all, pos, b.length);
                pos += b.length;
            }
        }
        return Utf8Lossy.decode(all, 0, all.length);
    }

    /** The bytes {@code id} contributes to a decode, or null if it contributes nothing. */
    byte[] bytesForDecode(int id, boolean skipSpecialTokens) {
        if (id < 0 || id >= tokenBytes.length || (skipSpecialTokens && special[id])) {
            return null;
        }
        return tokenBytes[id];
    }

    /**
     * The token string of each id (byte-level spelling, e.g. {@code "Ġworld"}), like
     * {@code convert_ids_to_tokens}.
     *
     * @throws IllegalArgumentException if an id names no token
     */
    public List<String> tokens(int[] ids) {
        List<String> out = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
                throw new IllegalArgumentException("No token has id " + id + " (vocabulary size " + vocabSize() + ")");
            }
            out.add(idToToken[id]);
        }
        return Collections.unmodifiableList(out);
    }

    /** The id of a token string (byte-level spelling, or an added token's text), if there is one. */
    public OptionalInt tokenId(String token) {
        Integer id = addedTokenIds.get(token);
        if (id == null) {
            id = model.vocab().get(token);
        }
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** One more than the largest id of the model vocabulary and the added tokens. */
    public int vocabSize() {
        return idToToken.length;
    }

    /** Whether {@code id} is an added token marked special (skipped by {@code decode(ids, true)}). */
    public boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    /**
     * The raw bytes {@code id} decodes to, as the ByteLevel decoder computes them: for model tokens
     * the bytes behind the byte-level spelling (possibly part of a UTF-8 sequence); for special tokens
     * such as {@code <role>} their UTF-8 text (strictly: an added token spelled only with byte-level
     * alphabet characters is mapped through the alphabet like any token, as the reference does).
     *
     * @throws IllegalArgumentException if the id names no token
     */
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= tokenBytes.length || tokenBytes[id] == null) {
            throw new IllegalArgumentException("No token has id " + id + " (vocabulary size " + vocabSize() + ")");
        }
        return tokenBytes[id].clone();
    }

    /** Hex SHA-256 of the tokenizer.json bytes, to check that two processes use the same tokenizer. */
    public String sha256() {
        return sha256;
    }

    /** A new streaming decoder; see {@link IncrementalDetokenizer}. */
    public IncrementalDetokenizer detokenizer(boolean skipSpecialTokens) {
        return new IncrementalDetokenizer(this, skipSpecialTokens);
    }

    /** Number of merges in the model (for diagnostics and benchmarks). */
    int mergeCount() {
        return model.mergeCount();
    }

    /** The ids of one pre-tokenized word (for benchmarks and diagnostics). */
    int[] encodeWord(String word) {
        IntArrayBuilder out = new IntArrayBuilder(8);
        model.tokenize(word, out);
        return out.toArray();
    }

    /** Sends the words the model would see for {@code text} (no added tokens) to {@code sink}. */
    void forEachWord(String text, java.util.function.Consumer<String> sink) {
        preTokenizer.split(normalizer.normalize(text), sink);
    }
}
