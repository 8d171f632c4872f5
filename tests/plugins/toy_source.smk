# The toy source's one rule: its folder (written by the test) prepared into <root>/prepared/.


rule prepare_dataset:
    input:
        folder=f"{ROOT}/folder",
    output:
        prepared=directory(PREP),
    params:
        classes=config["dataset"]["classes"],
    log:
        "logs/prepare_dataset/prepare_dataset.log",
    run:
        from toy_source import prepare_folder

        prepare_folder(input.folder, output.prepared, list(params.classes))
