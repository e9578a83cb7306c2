// What `import x from '*.svg'` (and CSS) gives the unit tests: an empty icon.
module.exports = '<svg xmlns="http://www.w3.org/2000/svg"></svg>';
