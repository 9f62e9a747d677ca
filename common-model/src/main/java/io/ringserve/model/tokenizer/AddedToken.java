package io.ringserve.model.tokenizer;

/**
 * One entry of {@code added_tokens}: text that is matched as a whole before the model sees the input.
 *
 * @param id         token id
 * @param content    the exact text of the token
 * @param singleWord only match when not glued to a word character on either side
 * @param lstrip     the match also swallows whitespace on its left
 * @param rstrip     the match also swallows whitespace on its right
 * @param normalized match against normalized text instead of the raw input
 * @param special    skipped by {@code decode(ids, true)}
 */
record AddedToken(int id, String content, boolean singleWord, boolean lstrip, boolean rstrip,
                  boolean normalized, boolean special) {

    static AddedToken parse(JsonCursor json) {
        int id = json.required("id").nonNegativeInt();
        String content = json.required("content").string();
        if (content.isEmpty()) {
            throw json.required("content").error("an added token cannot be empty");
        }
        boolean special = json.bool("special", false);
        return new AddedToken(id, content, json.bool("single_word", false), json.bool("lstrip", false),
                json.bool("rstrip", false), json.bool("normalized", !special), special);
    }
}
