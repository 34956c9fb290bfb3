use slint_build::{CompilerConfiguration, DefaultTranslationContext};

fn main() -> Result<(), slint_build::CompileError> {
    // Debug info lets the headless tests find elements by their accessible labels.
    // German is the source language; translations/en holds the English texts.
    let config = CompilerConfiguration::new()
        .with_style("fluent-light".into())
        .with_debug_info(true)
        .with_bundled_translations("translations")
        .with_default_translation_context(DefaultTranslationContext::None);
    slint_build::compile_with_config("ui/main.slint", config)
}
