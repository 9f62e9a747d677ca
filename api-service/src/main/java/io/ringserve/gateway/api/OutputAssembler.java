package io.ringserve.gateway.api;

import io.ringserve.gateway.worker.WorkerOutput;
import io.ringserve.model.tokenizer.IncrementalDetokenizer;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.protocol.v1.TokenLogprob;
import io.ringserve.protocol.v1.TopLogprob;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns worker tokens into text events for one choice: incremental detokenizing (never splitting a UTF-8
 * character), the reasoning split at {@code </think>} (as DeepSeek-R1 parsers do: everything before it is
 * reasoning, newlines right after it are dropped), and stop strings matched on the answer text across token
 * boundaries. Text that might be the start of {@code </think>} or of a stop string is held back until it is
 * decided. Not thread-safe; one per request.
 */
public final class OutputAssembler {
    static final String THINK_END = "</think>";

    private final IncrementalDetokenizer detokenizer;
    private final Tokenizer tokenizer;
    private final List<String> stops;
    private final int promptTokens;
    private boolean reasoning;
    private boolean contentStarted;
    private final StringBuilder pending = new StringBuilder();
    private int completionTokens;
    private boolean finished;

    /**
     * @param splitReasoning whether output starts in reasoning (the prompt ends inside a think block)
     */
    public OutputAssembler(Tokenizer tokenizer, List<String> stops, int promptTokens, boolean splitReasoning) {
        this.tokenizer = tokenizer;
        this.detokenizer = tokenizer.detokenizer(true);
        this.stops = stops;
        this.promptTokens = promptTokens;
        this.reasoning = splitReasoning;
    }

    /** Whether a stop string ended the output; later tokens are ignored. */
    public boolean finished() {
        return finished;
    }

    /** Events for one worker output; a {@link OutputEvent.Done} is always the last event. */
    public List<OutputEvent> accept(WorkerOutput output) {
        List<OutputEvent> out = new ArrayList<>();
        if (finished) {
            return out;
        }
        switch (output) {
            case WorkerOutput.Tokens t -> {
                if (!t.logprobs().isEmpty()) {
                    List<Map<String, Object>> entries = new ArrayList<>();
                    for (int i = 0; i < t.ids().length && i < t.logprobs().size(); i++) {
                        TokenLogprob lp = t.logprobs().get(i);
                        Map<String, Object> e = entry(t.ids()[i], lp.getLogprob());
                        List<Map<String, Object>> top = new ArrayList<>();
                        for (TopLogprob alt : lp.getTopLogprobsList()) {
                            top.add(entry(alt.getTokenId(), alt.getLogprob()));
                        }
                        e.put("top_logprobs", top);
                        entries.add(e);
                    }
                    out.add(new OutputEvent.Logprobs(entries));
                }
                for (int id : t.ids()) {
                    completionTokens++;
                    pending.append(detokenizer.add(id));
                    if (drain(out, false)) {
                        finished = true;
                        out.add(new OutputEvent.Done("stop", promptTokens, completionTokens));
                        return out;
                    }
                }
            }
            case WorkerOutput.Finished f -> {
                pending.append(detokenizer.flush());
                boolean stopped = drain(out, true);
                finished = true;
                out.add(new OutputEvent.Done(stopped ? "stop" : f.reason(), promptTokens,
                        Math.max(completionTokens, f.completionTokens())));
            }
        }
        return out;
    }

    /** Emits what is decided; returns true when a stop string was found. */
    private boolean drain(List<OutputEvent> out, boolean end) {
        if (reasoning) {
            int at = pending.indexOf(THINK_END);
            if (at >= 0) {
                emit(out, true, pending.substring(0, at));
                pending.delete(0, at + THINK_END.length());
                reasoning = false;
            } else {
                int keep = end ? 0 : heldBack(pending, List.of(THINK_END));
                emit(out, true, pending.substring(0, pending.length() - keep));
                pending.delete(0, pending.length() - keep);
                return false;
            }
        }
        if (!contentStarted) {
            int i = 0;
            while (i < pending.length() && (pending.charAt(i) == '\n' || pending.charAt(i) == '\r')) {
                i++;
            }
            pending.delete(0, i);
            if (pending.isEmpty()) {
                return false;
            }
            contentStarted = true;
        }
        int stopAt = -1;
        for (String s : stops) {
            int at = pending.indexOf(s);
            if (at >= 0 && (stopAt < 0 || at < stopAt)) {
                stopAt = at;
            }
        }
        if (stopAt >= 0) {
            emit(out, false, pending.substring(0, stopAt));
            pending.setLength(0);
            return true;
        }
        int keep = end ? 0 : heldBack(pending, stops);
        emit(out, false, pending.substring(0, pending.length() - keep));
        pending.delete(0, pending.length() - keep);
        return false;
    }

    private Map<String, Object> entry(int id, float logprob) {
        Map<String, Object> e = new LinkedHashMap<>();
        byte[] bytes;
        try {
            bytes = tokenizer.tokenBytes(id);
        } catch (IllegalArgumentException ex) {
            bytes = new byte[0];
        }
        e.put("token", tokenizer.decode(new int[] {id}, false));
        e.put("logprob", logprob);
        List<Integer> b = new ArrayList<>(bytes.length);
        for (byte x : bytes) {
            b.add(x & 0xff);
        }
        e.put("bytes", b);
        return e;
    }

    private static void emit(List<OutputEvent> out, boolean reasoning, String text) {
        if (!text.isEmpty()) {
            out.add(reasoning ? new OutputEvent.Reasoning(text) : new OutputEvent.Content(text));
        }
    }

    /** Length of the longest suffix of {@code text} that is a proper prefix of one of the markers. */
    static int heldBack(CharSequence text, List<String> markers) {
        int best = 0;
        for (String m : markers) {
            int max = Math.min(m.length() - 1, text.length());
            for (int len = max; len > best; len--) {
                if (m.regionMatches(0, text.toString(), text.length() - len, len)) {
                    best = len;
                    break;
                }
            }
        }
        // never split a surrogate pair
        if (best > 0 && best < text.length() && Character.isLowSurrogate(text.charAt(text.length() - best))) {
            best++;
        }
        return best;
    }
}
