fn main() -> Result<(), slint_build::CompileError> {
    slint_build::compile("ui/main.slint")
}
