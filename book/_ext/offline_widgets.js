// Loaded between require.js and html-manager's embed-amd.js (see offline_assets.py).
(function () {
  // html-manager loads its icon fonts from the folder of its AMD module, which RequireJS would place
  // under the page's own folder: name that folder, the vendored copy next to this script.
  const here = new URL(".", document.currentScript.src).href;
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": here + "vendor/html-manager" } });

  // html-manager typesets widget labels with the MathJax 2 call MathJax.Hub.Queue(["Typeset", hub, element]);
  // the book loads MathJax 3, so forward that call to typesetPromise. Widgets are drawn on "load", after
  // this listener (added first) has run.
  window.addEventListener("load", function () {
    const mathjax = window.MathJax;
    if (!mathjax || !mathjax.startup || mathjax.Hub) return;
    mathjax.Hub = {
      Queue: function (...commands) {
        for (const command of commands) {
          if (Array.isArray(command) && command[0] === "Typeset" && command[2]) {
            mathjax.startup.promise.then(() => mathjax.typesetPromise([command[2]]));
          }
        }
      },
    };
  });
})();
