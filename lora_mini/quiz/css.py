"""The quiz's look in JupyterLab: one <style> block, sent with each quiz's heading.

Browser tests select on these classes (.lora-quiz, .lora-quiz-card, .lora-quiz-feedback, ...): keep them.
"""

CSS = """<style>
.lora-quiz-card { border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px; padding: 2px 12px 8px; margin: 6px 0; }
.lora-quiz-options .widget-radio-box label { display: flex; align-items: flex-start; height: auto; line-height: 1.4; white-space: normal; margin: 3px 0; }
.lora-quiz-options .widget-radio-box label input { order: -1; float: none; flex: none; height: 1.4em; line-height: 1.4; }
.lora-quiz-options .widget-checkbox { height: auto; width: auto; }
.lora-quiz-options .widget-label-basic { display: flex; align-items: flex-start; white-space: normal; overflow: visible; height: auto; line-height: 1.4; }
.lora-quiz-options .widget-label-basic input { flex: none; margin-top: 0.2em; }
.lora-quiz-correct { border-left: 4px solid var(--jp-success-color1, #2e7d32); padding-left: 8px; }
.lora-quiz-wrong { border-left: 4px solid var(--jp-error-color1, #c62828); padding-left: 8px; }
.lora-quiz-hint { font-style: italic; }
.lora-quiz-score { font-weight: bold; }
.lora-quiz-topics td { padding: 1px 10px 1px 0; }
</style>"""
