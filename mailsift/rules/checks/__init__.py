"""Python checks for `eval:` rules; each module registers its checks with `@check` on import."""
