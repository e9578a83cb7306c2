// What `import x from '*.svg'` (and CSS) gives the unit tests.
module.exports = '';
